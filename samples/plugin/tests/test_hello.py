"""Tests of the Acme Hello task, written as its author would: with ``dtsx.testing``.

``run_task`` runs the task in a package of its own through dtsx's real planner and executor, so
validation, property expressions, the FILE connection and the events are the real thing. Run
them with ``pytest samples/plugin/tests`` once the plugin is installed (``pip install
./samples/plugin``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from acme_dtsx.hello import HelloTask

from dtsx.engine.errors import PackageValidationError
from dtsx.testing import file_connection, run_task, validate_task


def test_it_greets_into_a_variable() -> None:
    run = run_task(
        HelloTask, {"Name": "World", "ResultVariable": "User::Message"}, variables={"Message": ""}
    )
    assert run.succeeded, run.errors
    assert run.variables["User::Message"] == "Hello, World!"
    assert run.information == ["Hello, World!"]


def test_a_property_expression_sets_the_name(tmp_path: Path) -> None:
    out = tmp_path / "greetings.txt"
    run = run_task(
        HelloTask,
        {"Greeting": "Bonjour", "OutputConnection": "Greetings"},
        variables={"User::Who": "monde"},
        connections={"Greetings": file_connection(out, usage=1)},
        expressions={"Name": "UPPER(@[User::Who])"},
    )
    assert run.succeeded, run.errors
    assert out.read_text(encoding="utf-8") == "Bonjour, MONDE!\n"


def test_validation_names_what_is_missing() -> None:
    problems = validate_task(HelloTask, {"ResultVariable": "User::Nowhere"})
    messages = [p.message for p in problems if p.code == "invalid-task"]
    assert any("has no Name" in m for m in messages)
    assert any("'User::Nowhere' is not a variable" in m for m in messages)
    with pytest.raises(PackageValidationError):
        run_task(HelloTask, {})


def test_a_missing_output_folder_fails_the_task_with_a_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "greetings.txt"
    run = run_task(
        HelloTask,
        {"Name": "World", "OutputConnection": "Greetings"},
        connections={"Greetings": file_connection(missing, usage=1)},
    )
    assert run.result == "Failure" and not run.internal_errors  # failed as planned, not a crash
    assert run.errors == [
        f"the Hello task cannot append to {missing}: No such file or directory; check that its "
        "folder exists and can be written."
    ]
