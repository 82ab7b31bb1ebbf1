"""The For Loop's fast paths agree with the plain code they skip (docs/architecture.md, Speed)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import Value
from dtsx.engine.expressions import dotnet
from dtsx.engine.expressions.dotnet import AS_IS, DOTNET_TO_DT, value_to_dotnet
from dtsx.engine.model import Variable
from dtsx.engine.variables import Scope, Slot, VariableStore, _reference, split_name, typed_value

# One non-NULL value of each expression type a variable can hold.
_SAMPLES = {
    "DT_BOOL": True,
    "DT_UI1": 200,
    "DT_I1": -5,
    "DT_UI2": 65,
    "DT_I2": -300,
    "DT_I4": 7,
    "DT_UI4": 4_000_000_000,
    "DT_I8": -(2**40),
    "DT_UI8": 2**63,
    "DT_R4": 1.5,
    "DT_R8": 2.25,
    "DT_DECIMAL": Decimal("12.5"),
    "DT_CY": Decimal("3.1416"),
    "DT_WSTR": "row label ü",
    "DT_DATE": datetime(2026, 12, 2, 5, 0),
    "Object": object(),
}


def _outcome(value: Value, type_name: str) -> Value | str:
    try:
        return value_to_dotnet(value, type_name)
    except ExpressionError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("type_name", sorted(AS_IS))
def test_as_is_values_convert_to_what_the_conversion_gives(
    type_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = [Value(dt, raw) for dt, raw in _SAMPLES.items()]
    fast = [_outcome(value, type_name) for value in values]
    monkeypatch.setattr(dotnet, "AS_IS", {})  # the plain conversion, for every value
    assert fast == [_outcome(value, type_name) for value in values]


def test_dbnull_takes_no_value_as_is() -> None:
    assert "DBNull" not in AS_IS and "Empty" not in AS_IS
    with pytest.raises(ExpressionError):
        value_to_dotnet(Value("DT_NULL", 1), "DBNull")


def test_null_is_never_taken_as_is() -> None:
    with pytest.raises(ExpressionError):
        value_to_dotnet(Value("DT_I4", None), "Int32")


@pytest.mark.parametrize("type_name", sorted(DOTNET_TO_DT))
def test_a_write_stores_what_typed_value_gives(type_name: str) -> None:
    store = VariableStore(lambda text, assignment: None)
    scope = Scope(store, None, "Package")
    dt = DOTNET_TO_DT[type_name]
    if dt == "DT_NULL":
        return
    value = Value(dt, _SAMPLES[dt])
    slot = scope.add(Slot("User", "X", type_name, Value(dt, None)))
    scope.write(slot, value)
    assert slot.value == typed_value(type_name, value, what="x")
    assert scope.assign(slot, lambda lookup: value) == typed_value(type_name, value, what="x")


@pytest.mark.parametrize(
    "name",
    [
        "User::X",
        "@[User::X]",
        " @[User::X] ",
        "X",
        "System::TaskName",
        "$Package::P",
        "@[$Project::Q]",
    ],
)
def test_a_parsed_reference_is_what_split_name_gives(name: str) -> None:
    namespace, short = split_name(name)
    qualified, parsed_short, wants_system, parameter = _reference(name)
    assert parsed_short == short
    assert qualified == (f"{namespace}::{short}" if namespace is not None else None)
    assert wants_system == (namespace is None or namespace == "System")
    assert parameter == (namespace is not None and namespace.startswith("$"))


def test_find_reads_each_form_of_a_name_alike() -> None:
    store = VariableStore(lambda text, assignment: None)
    root = Scope(store, None, "Package")
    root.add_variables(
        [Variable(ref_id="Package.Variables[User::X]", name="X", data_type=3, value="4")]
    )
    child = Scope(store, root, "Package\\Loop")
    slot = root.own["User::X"]
    for name in ("User::X", "@[User::X]", "X", " @[User::X] "):
        assert child.find(name) is slot
    assert child.find("User::Y") is None
