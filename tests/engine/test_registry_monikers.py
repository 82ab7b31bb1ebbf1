"""The API's STOCK: monikers of Microsoft's tasks name the same task as their other spellings."""

from __future__ import annotations

import pytest

from dtsx.engine.registry import normalise_type


@pytest.mark.parametrize(
    ("moniker", "name"),
    [
        ("STOCK:SendMailTask", "Microsoft.SendMailTask"),
        ("STOCK:PipelineTask", "Microsoft.Pipeline"),
        ("STOCK:SQLTask", "Microsoft.ExecuteSQLTask"),
        ("stock:sqltask", "Microsoft.ExecuteSQLTask"),
        ("STOCK:ScriptTask", "Microsoft.ScriptTask"),
    ],
)
def test_a_task_moniker_is_its_logical_name(moniker: str, name: str) -> None:
    assert normalise_type(moniker) == name
    assert normalise_type(name) == name


def test_container_monikers_stay_monikers() -> None:
    assert normalise_type("stock:forloop") == "STOCK:FORLOOP"
