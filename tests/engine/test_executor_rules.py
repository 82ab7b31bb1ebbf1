"""The executor's rules, one package each, in the 2012+ (v8) and 2008 (v3) persistence styles.

Each package records what ran into variables (Expression Tasks), so the assertions read the
run report: per-executable results and final variable values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.engine._exec import DATA, STYLES, results_by_ref, run_rule

sys.path.insert(0, str(DATA))
from rules import VALUES, matrix_targets  # noqa: E402

assert VALUES == (0, 1, 2)


def _expected_runs(source_outcome: str, value: int, op: int, truth: bool | None) -> bool:
    """The documented truth table (spec §3.3): Constraint, Expression, And, Or."""
    matches = {0: source_outcome == "Success", 1: source_outcome == "Failure", 2: True}[value]
    return {1: bool(truth), 2: matches, 3: matches and bool(truth), 4: matches or bool(truth)}[op]


@STYLES
def test_every_value_and_evalop_combination(style: str) -> None:
    result = run_rule("constraint_matrix", style)
    assert (
        result.result == "Success"
    )  # MaxErrorCount 0: the failing source does not fail the package
    refs = results_by_ref(result)
    assert refs["Package\\S"] == "Success" and refs["Package\\F"] == "Failure"
    checked = 0
    for name, src, value, op, truth in matrix_targets():
        outcome = "Success" if src == "S" else "Failure"
        should_run = _expected_runs(outcome, value, op, truth)
        assert result.variables[f"User::R_{name}"] == (1 if should_run else 0), name
        assert refs[f"Package\\{name}"] == ("Success" if should_run else "NotRun"), name
        checked += 1
    assert checked == 2 * 3 * 7


@STYLES
def test_logical_and_waits_for_all_and_or_for_one(style: str) -> None:
    result = run_rule("and_or", style)
    v = result.variables
    assert (v["User::R_C"], v["User::R_D"], v["User::R_E"], v["User::R_F"]) == (0, 1, 1, 0)
    refs = results_by_ref(result)
    assert refs["Package\\C"] == "NotRun" and refs["Package\\F"] == "NotRun"


@STYLES
def test_never_satisfiable_branches_do_not_run(style: str) -> None:
    result = run_rule("never_satisfiable", style)
    v = result.variables
    assert v["User::R_A"] == 1
    assert (
        v["User::R_B"] == 0 and v["User::R_C"] == 0
    )  # B's constraint is false; C only reachable via B
    assert v["User::R_D"] == 1  # OR: also reachable from A
    assert v["User::R_E"] == 0  # AND with a branch that never ran
    assert result.result == "Success"
    assert [e.iterations for e in result.executables if e.result == "Success"] == [1, 1]


@STYLES
def test_disabled_counts_as_success_for_constraints(style: str) -> None:
    result = run_rule("disabled", style)
    v = result.variables
    assert v["User::R_A"] == 0 and v["User::R_Inner"] == 0
    assert v["User::R_B"] == 1 and v["User::R_D"] == 1 and v["User::R_G"] == 1
    assert v["User::R_C"] == 0  # a Failure constraint from a disabled task never fires
    refs = results_by_ref(result)
    assert refs["Package\\A"] == "NotRun" and refs["Package\\Seq"] == "NotRun"


@STYLES
def test_force_execution_result_replaces_the_outcome(style: str) -> None:
    result = run_rule("force_result", style)
    v = result.variables
    assert v["User::R_A"] == 1  # forced to Failure, but it still ran
    assert (v["User::R_B"], v["User::R_C"]) == (1, 0)
    assert (v["User::R_E"], v["User::R_G"]) == (1, 0)  # D failed, forced to Success
    refs = results_by_ref(result)
    assert refs["Package\\A"] == "Failure" and refs["Package\\D"] == "Success"
    assert result.events["OnError"] == 1 and result.events["OnTaskFailed"] == 1


@STYLES
@pytest.mark.parametrize(
    ("rule", "package_result"),
    [
        ("max_errors_default", "Failure"),
        ("max_errors_raised", "Success"),
        ("max_errors_unlimited", "Success"),
    ],
)
def test_max_error_count_with_a_failure_path(style: str, rule: str, package_result: str) -> None:
    result = run_rule(rule, style)
    assert result.variables["User::R_OnFail"] == 1 and result.variables["User::R_OnOk"] == 0
    assert result.result == package_result
    assert result.exit_code == (1 if package_result == "Failure" else 0)
    errors = result.executable("Package\\A").errors
    assert len(errors) == 1 and "division by zero" in errors[0]


@STYLES
def test_fail_parent_on_failure(style: str) -> None:
    result = run_rule("fail_parent", style)
    refs = results_by_ref(result)
    assert refs["Package\\Seq"] == "Failure"  # FailParentOnFailure despite MaxErrorCount 10
    assert refs["Package\\Quiet"] == "Success"  # the same failure absorbed by MaxErrorCount 10
    v = result.variables
    assert (v["User::R_AfterSeq"], v["User::R_SeqFailed"], v["User::R_AfterQuiet"]) == (0, 1, 1)
    assert result.result == "Success"


@STYLES
def test_fail_package_on_failure(style: str) -> None:
    result = run_rule("fail_package", style)
    assert result.result == "Failure" and result.exit_code == 1  # despite MaxErrorCount 10


@STYLES
def test_errors_bubble_through_every_handler(style: str) -> None:
    result = run_rule("bubbling", style)
    assert result.variables["User::Log"] == "seq;pkg;"
    source = result.variables["User::Source"]
    assert source.startswith("Bad|") and "division by zero" in source
    assert result.executable("Package.EventHandlers[OnError]").iterations == 1


@STYLES
def test_propagate_false_stops_bubbling(style: str) -> None:
    result = run_rule("propagate_false", style)
    assert result.variables["User::Log"] == "seq;"
    assert result.executable("Package.EventHandlers[OnError]").result == "NotRun"
    assert result.events["OnError"] == 1


@STYLES
def test_disable_event_handlers_skips_only_that_containers_handlers(style: str) -> None:
    result = run_rule("disabled_handlers", style)
    assert result.variables["User::Log"] == "pkg;"


@STYLES
def test_package_on_pre_execute_fires_for_every_executable_but_not_itself(style: str) -> None:
    result = run_rule("pre_execute_count", style)
    assert result.variables["User::Work"] == 3
    # Package, T1, T2, Seq, T3; the handler's own task does not re-trigger its handler.
    assert result.variables["User::Pre"] == 5


@STYLES
def test_for_loop(style: str) -> None:
    result = run_rule("for_loop", style)
    assert result.variables["User::Sum"] == 0 + 1 + 2 + 3
    assert result.variables["User::i"] == 4
    assert result.executable("Package\\Loop").iterations == 4
    assert result.executable("Package\\Loop\\Add").iterations == 4
    assert result.variables["User::R_After"] == 1


@STYLES
def test_foreach_file_enumerator_over_a_folder(style: str, tmp_path: Path) -> None:
    for name in ("b.txt", "a.txt", "c.csv", "d.TXT"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.txt").write_text("x")
    from dtsx.engine.executor import parse_set

    result = run_rule("foreach_file", style, sets=[parse_set(f"User::Dir={tmp_path}")])
    assert result.result == "Success"
    assert result.variables["User::Names"] == "a.txt;b.txt;d.TXT;"
    assert result.executable("Package\\Files").iterations == 3


@STYLES
def test_foreach_file_enumerator_on_a_missing_folder_warns_and_runs_nothing(
    style: str, tmp_path: Path
) -> None:
    from dtsx.engine.executor import parse_set

    result = run_rule("foreach_file", style, sets=[parse_set(f"User::Dir={tmp_path / 'absent'}")])
    assert result.result == "Success"
    assert result.variables["User::Names"] == ""
    assert result.events.get("OnWarning") == 1


@STYLES
def test_foreach_item_enumerator_maps_by_value_index(style: str) -> None:
    result = run_rule("foreach_item", style)
    assert result.variables["User::Names"] == "a;b;c;"
    assert result.variables["User::Total"] == 321
    assert result.executable("Package\\Items").iterations == 3


@STYLES
def test_scoping_and_shadowing(style: str) -> None:
    result = run_rule("scoping", style)
    v = result.variables
    assert v["User::Inner"] == 10  # the Sequence's own X shadows the package's
    assert v["User::Again"] == 99  # written to the Sequence's X ...
    assert v["User::X"] == 1  # ... leaving the package's X alone
    assert v["User::Outer"] == 1


@STYLES
def test_evaluate_as_expression_is_recomputed_on_read(style: str) -> None:
    result = run_rule("eval_as_expression", style)
    assert result.variables["User::Out"] == 10
    assert result.variables["User::Y"] == 10
    assert result.variables["User::Label"] == "A is 5"


@STYLES
def test_self_referencing_expression_variable_fails_the_task_not_the_run(style: str) -> None:
    result = run_rule("eval_recursion", style)
    assert result.result == "Failure"
    errors = result.executable("Package\\ReadR").errors
    assert len(errors) == 1 and "User::R" in errors[0] and "refers to itself" in errors[0]


@STYLES
def test_read_only_variable_refuses_assignment(style: str) -> None:
    result = run_rule("read_only", style)
    assert result.variables["User::Fixed"] == 1
    assert result.variables["User::R_After"] == 1
    errors = result.executable("Package\\Write").errors
    assert len(errors) == 1 and "User::Fixed is read-only" in errors[0]


@STYLES
def test_system_variables(style: str) -> None:
    result = run_rule("system_vars", style)
    assert result.variables["User::Who"] == "system_vars/Who"
    assert result.variables["User::Interactive"] is False


@STYLES
@pytest.mark.parametrize(
    "sets",
    [
        ["User::X=21", "\\Package\\Seq.Variables[User::Local].Properties[Value];7"],
        [
            "\\Package.Variables[User::X].Properties[Value];21",
            "\\Package\\Seq.Variables[Local].Value;7",
        ],
        ["\\package.Variables[User::X].Value;21", "\\Package\\Seq.Variables[User::Local].Value;7"],
    ],
)
def test_set_overrides_in_both_syntaxes(style: str, sets: list[str]) -> None:
    from dtsx.engine.executor import parse_set

    result = run_rule("set_override", style, sets=[parse_set(s) for s in sets])
    assert result.variables["User::X"] == 21
    assert result.variables["User::Out"] == 42
    assert result.variables["User::LocalOut"] == 7


@STYLES
def test_concurrency_runs_everything_once_within_the_limit(style: str) -> None:
    result = run_rule("concurrency", style)
    assert all(result.variables[f"User::R{i}"] == 1 for i in range(12))
    assert result.variables["User::Joined"] == 1
    assert result.events["OnPreExecute"] == 14
