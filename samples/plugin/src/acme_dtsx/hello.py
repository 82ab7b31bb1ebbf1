"""The Acme Hello task: a complete, minimal dtsx task plugin.

It reads its settings from the task's ObjectData::

    <DTS:ObjectData>
      <HelloTaskData Greeting="Hello" Name="World" ResultVariable="User::Message"
                     OutputConnection="Greeting file" />
    </DTS:ObjectData>

builds "Hello, World!", stores it in ``ResultVariable``, optionally appends it to the file of a
FILE connection manager, and raises an information event. Property expressions may set
``Greeting`` and ``Name`` (their runtime names are the same as the XML names here).
"""

from __future__ import annotations

from dtsx.engine.errors import TaskFailedError
from dtsx.tasks.base import Task, TaskContext, TaskProperties, ValidationContext, register_task
from pydantic import AliasChoices, Field

__all__ = ["HelloTask"]


# The decorator registers the class when this module is imported; the entry point in
# pyproject.toml makes dtsx import it on demand. Both name the same key, so both may be used.
@register_task("Acme.HelloTask")
class HelloTask(Task):
    class Properties(TaskProperties):
        greeting: str = Field("Hello", validation_alias=AliasChoices("Greeting", "greeting"))
        name: str = Field("", validation_alias=AliasChoices("Name", "name"))
        result_variable: str = Field(
            "", validation_alias=AliasChoices("ResultVariable", "result_variable")
        )
        output_connection: str = Field(
            "", validation_alias=AliasChoices("OutputConnection", "output_connection")
        )

    props: Properties

    def validate(self, vctx: ValidationContext) -> list[str]:
        """Problems found before the run: one sentence each; skip what expressions set."""
        problems: list[str] = []
        if not self.props.name.strip() and not vctx.is_dynamic("Name"):
            problems.append("the Hello task has no Name; say whom to greet.")
        var = self.props.result_variable.strip()
        if var and not vctx.has_variable(var):
            problems.append(f"ResultVariable {var!r} is not a variable in the task's scope.")
        conn = self.props.output_connection.strip()
        if conn and vctx.connection_type(conn) not in ("FILE", "FLATFILE"):
            problems.append(f"OutputConnection {conn!r} must name a FILE connection manager.")
        return problems

    def execute(self, ctx: TaskContext) -> None:
        if not self.props.name.strip():
            raise TaskFailedError("the Hello task has no Name; say whom to greet.")
        message = f"{self.props.greeting}, {self.props.name}!"
        if self.props.result_variable.strip():
            ctx.variables.set(self.props.result_variable.strip(), message)
        if self.props.output_connection.strip():
            # A FILE connection hands out its local path (--path-map applied); file_path refuses,
            # naming the connection, any other kind.
            path = ctx.file_path(self.props.output_connection.strip())
            try:
                with open(path, "a", encoding="utf-8") as out:
                    out.write(message + "\n")
            except OSError as exc:  # a planned failure, in one sentence (not an internal error)
                raise TaskFailedError(
                    f"the Hello task cannot append to {path}: {exc.strerror or exc}; check that "
                    "its folder exists and can be written."
                ) from exc
        ctx.events.information(message)
