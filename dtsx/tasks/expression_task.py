"""The Expression Task: evaluates one SSIS expression, usually an assignment ``@[User::X] = ...``.

Persisted as
``<DTS:ObjectData><ExpressionTask Expression="@[User::Iterator] = @[User::Iterator] + 1"/>``.
The expression is evaluated in the task's scope; an assignment stores its result into the
target variable, converted to that variable's type. The executor's evaluator holds the target's
write lock from the first read to the write (as SSIS's variable dispenser locks the variable), so
parallel tasks incrementing one variable lose no update; and the target becomes sensitive when
the expression read a sensitive value. Any evaluation error (division by zero, an unknown
variable, a read-only target) fails the task with the expression's own message.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from dtsx.engine.errors import DtsxError, TaskFailedError
from dtsx.tasks.base import Task, TaskContext, TaskProperties, ValidationContext

__all__ = ["ExpressionTask"]


class ExpressionTask(Task):
    """``Microsoft.ExpressionTask``."""

    class Properties(TaskProperties):
        expression: str = Field("", validation_alias=AliasChoices("Expression", "expression"))

    props: Properties

    def validate(self, vctx: ValidationContext) -> list[str]:
        if not self.props.expression.strip() and not vctx.is_dynamic("Expression"):
            return [
                "the Expression Task has no expression; set its Expression, e.g. @[User::Count] = "
                "@[User::Count] + 1."
            ]
        return []

    def expressions(self) -> list[tuple[str, bool]]:
        # Listed to the planner so ``dtsx validate`` compiles it and checks its variables, as
        # it does every property expression; an assignment is allowed, as execute() allows it.
        return [(self.props.expression, True)]

    def execute(self, ctx: TaskContext) -> None:
        text = self.props.expression
        if not text.strip():
            raise TaskFailedError(f"Expression Task {ctx.name!r} has no expression to evaluate.")
        if ctx.evaluate is None:
            raise TaskFailedError(
                "the Expression Task needs an expression evaluator, which this run does not "
                "provide."
            )
        try:
            ctx.evaluate(text, assignment=True)
        except TaskFailedError:
            raise
        except DtsxError as exc:
            raise TaskFailedError(f"Expression Task {ctx.name!r} failed: {exc}") from exc
