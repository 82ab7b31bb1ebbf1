"""The Execute Package task: runs a child package in process and fails if the child fails.

The child is a file: with ``UseProjectReference`` its ``PackageName`` is resolved against the
parent package's folder (the project folder); otherwise ``Connection`` names a FILE connection
manager whose path is the child. Parameter bindings (``ParameterAssignment``) give child
parameters the values of parent variables or parameters, and, as in SSIS, the child sees the
parent's variables by name. Packages stored in SQL Server (msdb) or the SSIS catalog are not
reachable and fail clearly. ``ExecuteOutOfProcess`` is accepted and ignored: children always run
in process.
"""

from __future__ import annotations

import os
from typing import Any

from dtsx.engine.errors import DtsxError, TaskFailedError
from dtsx.engine.model import EXEC_RESULTS, XmlNode
from dtsx.tasks.base import Task, TaskContext, TaskProperties, ValidationContext, register_task
from dtsx.tasks.base import SsisBool
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["ExecutePackageTask", "ParameterAssignment", "result_name"]

_FILE_TYPES = ("FILE", "FLATFILE")


class ParameterAssignment(BaseModel):
    """``<ParameterAssignment>``: a child parameter and the parent variable or parameter bound to
    it."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)
    parameter_name: str = Field(validation_alias=AliasChoices("ParameterName", "parameter_name"))
    bound_to: str = Field(
        validation_alias=AliasChoices(
            "BindedVariableOrParameterName", "BoundVariableOrParameterName", "bound_to"
        )
    )


def result_name(result: Any) -> str:
    """``Success``/``Failure``/``Completion``/``Canceled`` from an enum, a code or a string."""
    if isinstance(result, bool):
        return "Success" if result else "Failure"
    name = getattr(result, "name", None)
    if isinstance(name, str):
        return name.capitalize() if name.isupper() else name
    if isinstance(result, int):
        return EXEC_RESULTS.get(result, str(result))
    return str(result)


@register_task("Microsoft.ExecutePackageTask")
class ExecutePackageTask(Task):
    """Runs a child package through ``ctx.run_package``."""

    class Properties(TaskProperties):
        use_project_reference: SsisBool = Field(
            False, validation_alias=AliasChoices("UseProjectReference", "use_project_reference")
        )
        package_name: str = Field("", validation_alias=AliasChoices("PackageName", "package_name"))
        connection: str = Field("", validation_alias=AliasChoices("Connection", "connection"))
        package_password: str = Field(
            "", repr=False, validation_alias=AliasChoices("PackagePassword", "package_password")
        )
        execute_out_of_process: SsisBool = Field(
            False, validation_alias=AliasChoices("ExecuteOutOfProcess", "execute_out_of_process")
        )
        package_id: str = Field("", validation_alias=AliasChoices("PackageID", "package_id"))
        version_id: str = Field("", validation_alias=AliasChoices("VersionID", "version_id"))
        parameter_assignments: list[ParameterAssignment] = Field(
            default_factory=list,
            validation_alias=AliasChoices("ParameterAssignments", "parameter_assignments"),
        )

    props: Properties

    @classmethod
    def properties_from_node(cls, node: XmlNode | None) -> dict[str, Any]:
        """Simple children as text, plus every ``ParameterAssignment`` as a list."""
        data = super().properties_from_node(node)
        inner = node.children[0] if node is not None and node.children else None
        if inner is not None:
            data["ParameterAssignments"] = [
                {
                    "ParameterName": pa.child_text("ParameterName", "") or "",
                    "BindedVariableOrParameterName": pa.child_text(
                        "BindedVariableOrParameterName", ""
                    )
                    or "",
                }
                for pa in inner.findall("ParameterAssignment")
            ]
        return data

    # -- validation -------------------------------------------------------------------------

    def validate(self, vctx: ValidationContext) -> list[str]:
        p = self.props
        problems: list[str] = []
        if p.use_project_reference:
            if not p.package_name.strip() and not vctx.is_dynamic("PackageName"):
                problems.append(
                    "the Execute Package task uses a project reference but has no PackageName; "
                    "name the child .dtsx."
                )
        elif not vctx.is_dynamic("Connection"):
            problems.extend(self._check_connection(vctx))
        for pa in p.parameter_assignments:
            if not pa.parameter_name.strip():
                problems.append(
                    "a ParameterAssignment of the Execute Package task has no ParameterName."
                )
            elif not vctx.has_variable(pa.bound_to.strip()):
                problems.append(
                    f"the child parameter {pa.parameter_name!r} is bound to {pa.bound_to!r}, "
                    "which is no variable or parameter in the task's scope."
                )
        return problems

    def _check_connection(self, vctx: ValidationContext) -> list[str]:
        ref = self.props.connection.strip()
        if not ref:
            return [
                "the Execute Package task has no Connection; point it at a FILE connection manager "
                "for the child .dtsx."
            ]
        kind = vctx.connection_type(ref)
        if kind is None:
            return [
                f"the Execute Package task's Connection {ref!r} names no connection manager of the "
                "package or project."
            ]
        if kind.upper() not in _FILE_TYPES:
            return [self._stored_in_server(kind)]
        return []

    def _stored_in_server(self, kind: str) -> str:
        where = f" ({self.props.package_name})" if self.props.package_name.strip() else ""
        return (
            f"the child package{where} is stored in SQL Server (the task's Connection is of type "
            f"{kind}), which dtsx cannot read; "
            "export it to a .dtsx file and point the task at it with a FILE connection."
        )

    # -- execution --------------------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> None:
        if ctx.run_package is None:
            raise TaskFailedError(
                "this runner cannot run child packages (no run_package); run the parent with 'dtsx "
                "run'."
            )
        path = self._child_path(ctx)
        parameters = self._parameters(ctx)
        if self.props.execute_out_of_process:
            ctx.events.information(
                "ExecuteOutOfProcess is ignored: dtsx runs the child package in process."
            )
        try:
            outcome = ctx.run_package(
                path, parameters=parameters, variables=visible_variables(ctx.variables)
            )
        except DtsxError as exc:
            raise TaskFailedError(
                f"the child package {path} could not run: {exc}{self._password_hint()}"
            ) from exc
        name = result_name(outcome.result)
        if name.lower() != "success":
            raise TaskFailedError(
                f"the child package {os.path.basename(path)} finished with result {name}; see its "
                "errors above."
            )

    def _password_hint(self) -> str:
        if not self.props.package_password:
            return ""
        return (
            " (the task gives a PackagePassword: dtsx cannot decrypt password-protected packages; "
            "save the child "
            "with ProtectionLevel DontSaveSensitive and pass its secrets as parameters)"
        )

    def _child_path(self, ctx: TaskContext) -> str:
        if self.props.use_project_reference:
            return self._project_child(ctx)
        ref = self.props.connection.strip()
        if not ref:
            raise TaskFailedError(
                "the Execute Package task has no Connection; point it at a FILE connection manager "
                "for the child .dtsx."
            )
        finder = getattr(ctx.connections, "find", None)
        spec = finder(ref) if finder is not None else None
        kind = getattr(spec, "type_key", None)
        if isinstance(kind, str) and kind.upper() not in _FILE_TYPES:
            raise TaskFailedError(self._stored_in_server(kind))
        path = ctx.connections.acquire(ref)
        if not isinstance(path, str):
            raise TaskFailedError(self._stored_in_server(type(path).__name__))
        return path

    def _project_child(self, ctx: TaskContext) -> str:
        name = self.props.package_name.strip()
        if not name:
            raise TaskFailedError(
                "the Execute Package task uses a project reference but has no PackageName; name "
                "the child .dtsx."
            )
        local = ctx.local_path(name)
        base = (
            os.path.dirname(os.path.abspath(ctx.package_path)) if ctx.package_path else os.getcwd()
        )
        path = local if os.path.isabs(local) else os.path.join(base, local)
        if not os.path.isfile(path):
            raise TaskFailedError(
                f"the child package {name} was not found at {path}; keep project packages in the "
                "parent's folder "
                "(the project folder)."
            )
        return path

    def _parameters(self, ctx: TaskContext) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for pa in self.props.parameter_assignments:
            source = pa.bound_to.strip()
            if source not in ctx.variables:
                raise TaskFailedError(
                    f"the child parameter {pa.parameter_name} is bound to {source}, which is no "
                    "variable or "
                    "parameter in the task's scope; fix the binding."
                )
            values[pa.parameter_name.strip()] = ctx.variables.get(source)
        return values


def visible_variables(variables: Any) -> dict[str, Any]:
    """Every variable the task's scope sees, nearest first, by qualified name (System excluded).

    SSIS lets a child package read its parent's variables by name; the executor seeds the
    child's outermost scope with these. Works with any scope exposing ``iter_own()`` and
    ``parent`` (the executor's scopes); other variable holders give nothing to pass.
    """
    found: dict[str, Any] = {}
    scope = variables
    while scope is not None and hasattr(scope, "iter_own"):
        for slot in scope.iter_own():
            qualified = getattr(slot, "qualified", None)
            if not qualified or qualified in found or qualified.startswith("System::"):
                continue
            found[qualified] = scope.get(qualified)
        scope = getattr(scope, "parent", None)
    return found
