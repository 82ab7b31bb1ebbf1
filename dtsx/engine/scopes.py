"""The variable scopes of one run: each executable's own variables (made once per run, so values
persist across loop iterations), the System variables SSIS gives a package and each container,
and the outer scope a child package sees its parent's variables through."""

from __future__ import annotations

import getpass
import platform
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from dtsx.engine.errors import DtsxError
from dtsx.engine.expressions import Value
from dtsx.engine.model import Executable, ExecutableKind, Package
from dtsx.engine.variables import Scope, Slot, VariableStore, split_name, typed_value

__all__ = ["Scopes", "outer_scope", "visible_names"]

# A module constant: an enum class-attribute read is ~10x a global's, and every execution reads it.
_PACKAGE = ExecutableKind.PACKAGE


class Scopes:
    """Makes the scopes of one run's executions."""

    def __init__(
        self, store: VariableStore, package: Package, started: datetime, instance_id: str
    ) -> None:
        self.store = store
        self.package = package
        self.started = started
        self.instance_id = instance_id
        self._user_slots: dict[str, list[Slot]] = {}

    def slots_for(self, exe: Executable) -> list[Slot]:
        """The executable's own variables; created once per run so values persist across loops."""
        slots = self._user_slots.get(exe.ref_id)
        if slots is None:
            holder = Scope(self.store, None, exe.ref_id)
            holder.add_variables(exe.variables)
            slots = list(holder.own.values())
            self._user_slots[exe.ref_id] = slots
        return slots

    def make(
        self, exe: Executable, parent: Scope | None, *, started: datetime | None = None
    ) -> Scope:
        scope = Scope(self.store, parent, exe.ref_id)
        if exe.kind is _PACKAGE:
            self._package_system(scope)
        else:
            # System variables are built on first read (see Scope.lazy): most tasks read none.
            scope.lazy = partial(self._container_system, exe, started or datetime.now())
        if exe.variables:
            for slot in self.slots_for(exe):
                scope.add(slot)
        return scope

    def _package_system(self, scope: Scope) -> None:
        pkg = self.package
        add = scope.add_system
        add("PackageName", "String", pkg.name)
        add("PackageID", "String", pkg.dtsid or "")
        add("StartTime", "DateTime", self.started)
        add("ContainerStartTime", "DateTime", self.started)
        add("MachineName", "String", platform.node())
        add("UserName", "String", _user_name())
        add("ExecutionInstanceGUID", "String", "{" + self.instance_id + "}")
        add("CreatorName", "String", pkg.creator_name or "")
        add("CreatorComputerName", "String", pkg.creator_computer_name or "")
        add("VersionMajor", "Int32", pkg.version_major or 0)
        add("VersionMinor", "Int32", pkg.version_minor or 0)
        add("VersionBuild", "Int32", pkg.version_build or 0)
        add("VersionGUID", "String", pkg.version_guid or "")
        add("VersionComment", "String", "")
        add("InteractiveMode", "Boolean", False)
        add("OfflineMode", "Boolean", False)
        add("LocaleId", "Int32", pkg.locale_id if pkg.locale_id and pkg.locale_id > 0 else 1033)
        add("ServerExecutionID", "Int64", 0)
        add("CancelEvent", "Int32", 0)
        try:
            add("CreationDate", "DateTime", pkg.creation_date)
        except DtsxError:
            add("CreationDate", "DateTime", None)

    def _container_system(self, exe: Executable, started: datetime) -> dict[str, Slot]:
        """Per-executable System variables; ``started`` is the ContainerStartTime."""
        holder = Scope(self.store, None, exe.ref_id)
        add = holder.add_system
        add("TaskName", "String", exe.name)
        add("TaskID", "String", exe.dtsid or "")
        add("CreationName", "String", exe.raw_type or exe.type_key)
        add("LocaleId", "Int32", exe.locale_id if exe.locale_id and exe.locale_id > 0 else 1033)
        add("TaskTransactionOption", "Int32", exe.transaction_option)
        add("ContainerStartTime", "DateTime", started)
        return holder.own


def outer_scope(
    store: VariableStore, parent_scope: Scope | None, variables: dict[str, Any]
) -> Scope | None:
    """A parent package's variables, visible to this (child) package under its own: the
    Execute Package task's live scope (reads and writes reach the parent, as in SSIS), or
    copies of the values a caller passed."""
    if parent_scope is not None:
        return parent_scope
    if not variables:
        return None
    outer = Scope(store, None, "Parent")
    for name, raw in variables.items():
        namespace, short = split_name(name)
        type_name = _infer_type(raw)
        value = (
            raw if isinstance(raw, Value) else typed_value(type_name, raw, what=f"variable {name}")
        )
        outer.add(Slot(namespace or "User", short, type_name, value))
    return outer


def visible_names(scope: Scope | None) -> list[str]:
    """The qualified names of the variables ``scope`` sees (its own, then every scope above it,
    up through the parent packages). System variables are left out: a package has its own."""
    names: set[str] = set()
    while scope is not None:
        # A copy first: another thread may be adding this scope's System variables right now.
        names.update(
            slot.qualified for slot in list(scope.own.values()) if slot.namespace != "System"
        )
        scope = scope.parent
    return sorted(names)


def _infer_type(raw: Any) -> str:
    if isinstance(raw, Value):
        return "Object" if raw.type == "Object" else _DT_TO_DOTNET.get(raw.type, "Object")
    if isinstance(raw, bool):
        return "Boolean"
    if isinstance(raw, int):
        return "Int32" if -(2**31) <= raw < 2**31 else "Int64"
    if isinstance(raw, float):
        return "Double"
    if isinstance(raw, Decimal):
        return "Decimal"
    if isinstance(raw, str):
        return "String"
    if isinstance(raw, datetime):
        return "DateTime"
    return "Object"


_DT_TO_DOTNET = {
    "DT_BOOL": "Boolean",
    "DT_I1": "SByte",
    "DT_UI1": "Byte",
    "DT_I2": "Int16",
    "DT_I4": "Int32",
    "DT_I8": "Int64",
    "DT_UI4": "UInt32",
    "DT_UI8": "UInt64",
    "DT_R4": "Single",
    "DT_R8": "Double",
    "DT_DECIMAL": "Decimal",
    "DT_WSTR": "String",
    "DT_DATE": "DateTime",
}


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers; SSIS always has one
        return ""
