"""Scoped, typed variables: resolution, shadowing, conversion, read-only, expressions,
parameters."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from dtsx.engine.errors import ExecutionError, ExpressionError
from dtsx.engine.expressions import Value, compile as compile_expression
from dtsx.engine.model import Parameter, Variable
from dtsx.engine.variables import Scope, VariableStore, split_name


def store(on_change=None) -> VariableStore:  # type: ignore[no-untyped-def]
    return VariableStore(
        lambda text, assign: compile_expression(text, assignment=assign), on_change=on_change
    )


def v(name: str, code: int = 3, value: str | None = "0", **fields) -> Variable:  # type: ignore[no-untyped-def]
    namespace = fields.pop("namespace", "User")
    return Variable(
        ref_id=f"Package.Variables[{namespace}::{name}]",
        namespace=namespace,
        name=name,
        data_type=code,
        value=value,
        **fields,
    )


def scopes() -> tuple[Scope, Scope]:
    s = store()
    outer = Scope(s, None, "Package")
    outer.add_variables(
        [v("X", value="1"), v("Name", 8, "pkg"), v("Other", 3, "5", namespace="Custom")]
    )
    inner = Scope(s, outer, "Package\\Seq")
    inner.add_variables([v("X", value="10")])
    return outer, inner


def test_split_name_forms() -> None:
    assert split_name("@[User::X]") == ("User", "X")
    assert split_name("$Package::P") == ("$Package", "P")
    assert split_name("X") == (None, "X")


def test_nearest_definition_shadows_and_writes_stay_local() -> None:
    outer, inner = scopes()
    assert inner.get("User::X") == 10 and inner.get("X") == 10 and outer.get("X") == 1
    inner.set("X", 99)
    assert inner.get("X") == 99 and outer.get("User::X") == 1
    assert inner.get("Name") == "pkg"  # not shadowed: found in the package scope
    assert (
        inner.get("Other") == 5 and inner.get("Custom::Other") == 5
    )  # another namespace, unqualified


def test_names_are_case_sensitive_and_unknown_names_fail_clearly() -> None:
    outer, _ = scopes()
    assert "x" not in outer and "X" in outer
    with pytest.raises(ExecutionError, match="'User::Nope' is not defined"):
        outer.get("User::Nope")
    with pytest.raises(KeyError):
        outer.lookup("Nope")


def test_writes_convert_to_the_variable_type() -> None:
    outer, _ = scopes()
    outer.set("X", "42")
    assert outer.value("X") == Value("DT_I4", 42)
    outer.set("X", Value("DT_I8", 7))
    assert outer.value("X") == Value("DT_I4", 7)
    with pytest.raises(ExecutionError, match="User::X of type Int32 cannot take the value 'abc'"):
        outer.set("X", "abc")


def test_read_only_variables_refuse_writes_naming_the_variable() -> None:
    s = store()
    scope = Scope(s, None, "Package")
    scope.add_variables([v("Fixed", read_only=True)])
    scope.add_system("PackageName", "String", "p")
    with pytest.raises(ExecutionError, match="User::Fixed is read-only"):
        scope.set("Fixed", 1)
    with pytest.raises(ExecutionError, match="System::PackageName is read-only"):
        scope.set("System::PackageName", "x")
    scope.force("Fixed", 3)  # run-time overrides (--set) may
    assert scope.get("Fixed") == 3


def test_handler_propagate_is_writable() -> None:
    scope = Scope(store(), None, "Package.EventHandlers[OnError]")
    scope.add_system("Propagate", "Boolean", True, writable=True)
    scope.set("System::Propagate", False)
    assert scope.get("Propagate") is False


def test_evaluate_as_expression_recomputes_on_each_read_in_its_own_scope() -> None:
    s = store()
    outer = Scope(s, None, "Package")
    outer.add_variables(
        [
            v("A", value="2"),
            v("Double", value="0", evaluate_as_expression=True, expression="@A * 2"),
        ]
    )
    inner = Scope(s, outer, "Package\\Seq")
    inner.add_variables(
        [v("A", value="100")]
    )  # shadows A for readers in Seq, not for Double's own scope
    assert inner.get("Double") == 4
    outer.set("A", 5)
    assert inner.get("Double") == 10


def test_expression_cycles_are_reported_not_recursed() -> None:
    s = store()
    scope = Scope(s, None, "Package")
    scope.add_variables(
        [
            v("P", evaluate_as_expression=True, expression="@Q + 1"),
            v("Q", evaluate_as_expression=True, expression="@P + 1"),
        ]
    )
    with pytest.raises(ExpressionError, match="refers to itself"):
        scope.get("P")


def test_parameters_are_read_only_and_required_ones_are_reported() -> None:
    s = store()
    params = [
        Parameter(name="N", scope="Package", dotnet_type="Int32", data_type_code=3, value="1"),
        Parameter(
            name="Need", scope="Project", dotnet_type="String", data_type_code=18, required=True
        ),
        Parameter(
            name="Given", scope="Project", dotnet_type="DateTime", data_type_code=16, required=True
        ),
    ]
    missing = s.add_parameters(params, {"$Project::Given": "2024-02-03 04:05:06"})
    assert missing == ["$Project::Need"]
    scope = Scope(s, None, "Package")
    assert scope.get("$Package::N") == 1
    assert scope.get("$Project::Given") == datetime(2024, 2, 3, 4, 5, 6)
    with pytest.raises(ExecutionError, match="parameter \\$Package::N is read-only"):
        scope.set("$Package::N", 2)


def test_changed_event_hook_fires_only_on_change_of_raising_variables() -> None:
    seen: list[str] = []
    s = store(on_change=lambda scope, slot: seen.append(slot.qualified))
    scope = Scope(s, None, "Package")
    scope.add_variables([v("Watched", raise_changed_event=True), v("Quiet")])
    scope.set("Watched", 0)
    scope.set("Watched", 1)
    scope.set("Quiet", 1)
    assert seen == ["User::Watched"]


def test_concurrent_writers_see_consistent_typed_values() -> None:
    outer, _ = scopes()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(300):
                outer.set("X", n)
                assert outer.value("X").type == "DT_I4"
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and outer.get("X") in range(6)


def test_object_variables_hold_any_python_value() -> None:
    scope = Scope(store(), None, "Package")
    scope.add_variables([v("Rows", 13, None)])
    rows = [("a", 1), ("b", 2)]
    scope.set("Rows", rows)
    assert scope.get("Rows") is rows
