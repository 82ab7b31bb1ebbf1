"""The executor's rules as packages: each one records what ran into variables.

Imported by ``_make.py`` (which writes the .dtsx files) and by the tests (which read the
``MATRIX`` description to compute the truth table they assert).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from _make import Con, Exe, Var, log_var, package, rec, task

FAIL = "@[User::Zero] = 1 / @[User::Zero]"  # division by zero at run time: the task fails
TRUE_EXPR = "1 == 1"
FALSE_EXPR = "1 == 2"
VALUES = (0, 1, 2)
OPS = (1, 2, 3, 4)


def matrix_targets() -> list[tuple[str, str, int, int, bool | None]]:
    """(target name, source name, Value, EvalOp, expression truth or None) for every combination."""
    out = []
    for src in ("S", "F"):
        for value in VALUES:
            for op in OPS:
                truths: tuple[bool | None, ...] = (None,) if op == 2 else (True, False)
                for truth in truths:
                    suffix = "" if truth is None else ("_t" if truth else "_f")
                    out.append((f"{src}_v{value}_op{op}{suffix}", src, value, op, truth))
    return out


def counter(name: str) -> str:
    return f"@[User::{name}] = @[User::{name}] + 1"


def constraint_matrix() -> Exe:
    targets = matrix_targets()
    children = [task("S", counter("R_S")), task("F", FAIL)]
    constraints = []
    variables = [Var("Zero"), Var("R_S")]
    for name, src, value, op, truth in targets:
        children.append(task(name, counter(f"R_{name}")))
        variables.append(Var(f"R_{name}"))
        expr = None if truth is None else (TRUE_EXPR if truth else FALSE_EXPR)
        constraints.append(Con(src, name, value, op, expr))
    return package("constraint_matrix", children, constraints, variables, MaxErrorCount="0")


def and_or() -> Exe:
    children = [task("A", counter("R_A")), task("B", FAIL)] + [
        task(n, counter(f"R_{n}")) for n in "CDEF"
    ]
    constraints = [
        Con("A", "C", 0),
        Con("B", "C", 0),  # AND: B did not succeed → C never runs
        Con("A", "D", 0, logical_and=False),
        Con("B", "D", 0, logical_and=False),  # OR: A succeeded
        Con("A", "E", 0),
        Con("B", "E", 1),  # AND: both hold
        Con("A", "F", 1, logical_and=False),
        Con("B", "F", 0, logical_and=False),  # OR: neither holds
    ]
    variables = [Var("Zero")] + [Var(f"R_{n}") for n in "ACDEF"]
    return package("and_or", children, constraints, variables, MaxErrorCount="0")


def never_satisfiable() -> Exe:
    children = [task(n, counter(f"R_{n}")) for n in "ABCDE"]
    constraints = [
        Con("A", "B", 1),  # A succeeds: B never runs
        Con("B", "C", 0),  # only through B
        Con("C", "D", 0, logical_and=False),
        Con("A", "D", 0, logical_and=False),  # also through A
        Con("C", "E", 0),
        Con("A", "E", 0),  # AND with a branch that never runs
    ]
    return package("never_satisfiable", children, constraints, [Var(f"R_{n}") for n in "ABCDE"])


def disabled() -> Exe:
    children = [task("A", counter("R_A"), Disabled="True")] + [
        task(n, counter(f"R_{n}")) for n in "BCD"
    ]
    children.append(
        Exe("Seq", "seq", props={"Disabled": "True"}, children=[task("Inner", counter("R_Inner"))])
    )
    children.append(task("G", counter("R_G")))
    constraints = [Con("A", "B", 0), Con("A", "C", 1), Con("A", "D", 2), Con("Seq", "G", 0)]
    return package(
        "disabled",
        children,
        constraints,
        [Var(f"R_{n}") for n in ["A", "B", "C", "D", "Inner", "G"]],
    )


def force_result() -> Exe:
    children = [
        task("A", counter("R_A"), ForceExecutionResult="1"),
        task("B", counter("R_B")),
        task("C", counter("R_C")),
        task("D", FAIL, ForceExecutionResult="0"),
        task("E", counter("R_E")),
        task("G", counter("R_G")),
    ]
    constraints = [Con("A", "B", 1), Con("A", "C", 0), Con("D", "E", 0), Con("D", "G", 1)]
    variables = [Var("Zero")] + [Var(f"R_{n}") for n in "ABCEG"]
    return package("force_result", children, constraints, variables, MaxErrorCount="10")


def max_errors(name: str, limit: str | None) -> Exe:
    children = [
        task("A", FAIL),
        task("OnFail", counter("R_OnFail")),
        task("OnOk", counter("R_OnOk")),
    ]
    constraints = [Con("A", "OnFail", 1), Con("A", "OnOk", 0)]
    props = {} if limit is None else {"MaxErrorCount": limit}
    return package(
        name, children, constraints, [Var("Zero"), Var("R_OnFail"), Var("R_OnOk")], **props
    )


def fail_parent() -> Exe:
    seq = Exe(
        "Seq",
        "seq",
        props={"MaxErrorCount": "10"},
        children=[task("Bad", FAIL, FailParentOnFailure="True")],
    )
    quiet = Exe("Quiet", "seq", props={"MaxErrorCount": "10"}, children=[task("Bad2", FAIL)])
    after = [
        task("AfterSeq", counter("R_AfterSeq")),
        task("SeqFailed", counter("R_SeqFailed")),
        task("AfterQuiet", counter("R_AfterQuiet")),
    ]
    constraints = [
        Con("Seq", "AfterSeq", 0),
        Con("Seq", "SeqFailed", 1),
        Con("Quiet", "AfterQuiet", 0),
    ]
    variables = [Var("Zero"), Var("R_AfterSeq"), Var("R_SeqFailed"), Var("R_AfterQuiet")]
    return package("fail_parent", [seq, quiet, *after], constraints, variables, MaxErrorCount="10")


def fail_package() -> Exe:
    children = [task("Bad", FAIL, FailPackageOnFailure="True", ForceExecutionResult="-1")]
    return package("fail_package", children, [], [Var("Zero")], MaxErrorCount="10")


def handler(event: str, *children: Exe, **props: str) -> Exe:
    constraints = [Con(a.name, b.name) for a, b in itertools.pairwise(children)]
    return Exe(
        event, "handler", props=dict(props), children=list(children), constraints=constraints
    )


def bubbling(name: str, propagate: bool) -> Exe:
    seq_steps = [task("Mark", rec("seq"))]
    if not propagate:
        seq_steps.append(task("Stop", "@[System::Propagate] = FALSE"))
    seq = Exe("Seq", "seq", children=[task("Bad", FAIL)], handlers=[handler("OnError", *seq_steps)])
    pkg_handler = handler(
        "OnError",
        task("Mark", rec("pkg")),
        task(
            "Source", '@[User::Source] = @[System::SourceName] + "|" + @[System::ErrorDescription]'
        ),
    )
    return package(
        name,
        [seq],
        [],
        [Var("Zero"), log_var(), Var("Source", "String", "")],
        handlers=[pkg_handler],
        MaxErrorCount="0",
    )


def disabled_handlers() -> Exe:
    seq = Exe(
        "Seq",
        "seq",
        props={"DisableEventHandlers": "True"},
        children=[task("Bad", FAIL)],
        handlers=[handler("OnError", task("Mark", rec("seq")))],
    )
    return package(
        "disabled_handlers",
        [seq],
        [],
        [Var("Zero"), log_var()],
        handlers=[handler("OnError", task("Mark", rec("pkg")))],
        MaxErrorCount="0",
    )


def pre_execute_count() -> Exe:
    seq = Exe("Seq", "seq", children=[task("T3", counter("Work"))])
    children = [task("T1", counter("Work")), task("T2", counter("Work")), seq]
    return package(
        "pre_execute_count",
        children,
        [Con("T1", "T2"), Con("T2", "Seq")],
        [Var("Work"), Var("Pre")],
        handlers=[handler("OnPreExecute", task("Count", counter("Pre")))],
    )


def for_loop() -> Exe:
    loop = Exe(
        "Loop",
        "for",
        props={
            "InitExpression": "@i = 0",
            "EvalExpression": "@i < 4",
            "AssignExpression": "@i = @i + 1",
        },
        children=[task("Add", "@[User::Sum] = @[User::Sum] + @[User::i]")],
    )
    return package(
        "for_loop",
        [loop, task("After", counter("R_After"))],
        [Con("Loop", "After")],
        [Var("i"), Var("Sum"), Var("R_After")],
    )


def for_loop_forever() -> Exe:
    loop = Exe(
        "Forever",
        "for",
        props={"EvalExpression": TRUE_EXPR},
        children=[task("Tick", counter("Ticks"))],
    )
    return package("for_loop_forever", [loop], [], [Var("Ticks", "Int64")])


def sleeper() -> Exe:
    return package("sleeper", [Exe("Sleep", "execproc", "30")], [], [])


def foreach_file() -> Exe:
    loop = Exe(
        "Files",
        "foreach",
        children=[task("Collect", '@[User::Names] = @[User::Names] + @[User::File] + ";"')],
        enumerator=(
            "File",
            {
                "Folder": "/nonexistent",
                "FileSpec": "*.txt",
                "FileNameRetrievalType": "1",
                "Recurse": "0",
            },
            [],
        ),
        mappings=[(0, "User::File")],
    )
    loop.props["__enum_expr_Directory"] = "@[User::Dir]"
    return package(
        "foreach_file",
        [loop],
        [],
        [Var("Dir", "String", ""), Var("File", "String", ""), Var("Names", "String", "")],
    )


def foreach_item() -> Exe:
    loop = Exe(
        "Items",
        "foreach",
        children=[
            task("Collect", '@[User::Names] = @[User::Names] + @[User::Name] + ";"'),
            task("Add", "@[User::Total] = @[User::Total] + @[User::Num]"),
        ],
        constraints=[Con("Collect", "Add")],
        enumerator=(
            "Item",
            {},
            [[(8, "a"), (3, "1")], [(8, "b"), (3, "20")], [(8, "c"), (3, "300")]],
        ),
        mappings=[(0, "User::Name"), (1, "User::Num")],
    )
    return package(
        "foreach_item",
        [loop],
        [],
        [Var("Name", "String", ""), Var("Num"), Var("Names", "String", ""), Var("Total")],
    )


def scoping() -> Exe:
    seq = Exe(
        "Seq",
        "seq",
        variables=[Var("X", value="10")],
        children=[
            task("ReadInner", "@[User::Inner] = @[User::X]"),
            task("WriteInner", "@[User::X] = 99"),
            task("ReadAgain", "@[User::Again] = @X"),
        ],
        constraints=[Con("ReadInner", "WriteInner"), Con("WriteInner", "ReadAgain")],
    )
    children = [seq, task("ReadOuter", "@[User::Outer] = @[User::X]")]
    return package(
        "scoping",
        children,
        [Con("Seq", "ReadOuter")],
        [Var("X", value="1"), Var("Inner"), Var("Outer"), Var("Again")],
    )


def eval_as_expression() -> Exe:
    children = [task("SetA", "@[User::A] = 5"), task("ReadY", "@[User::Out] = @[User::Y]")]
    variables = [
        Var("A", value="1"),
        Var("Y", value="0", expression="@[User::A] * 2"),
        Var("Out"),
        Var("Label", "String", "", expression='"A is " + (DT_WSTR, 10) @[User::A]'),
    ]
    return package("eval_as_expression", children, [Con("SetA", "ReadY")], variables)


def eval_recursion() -> Exe:
    children = [task("ReadR", "@[User::Out] = @[User::R]")]
    return package(
        "eval_recursion", children, [], [Var("R", expression="@[User::R] + 1"), Var("Out")]
    )


def read_only() -> Exe:
    children = [task("Write", "@[User::Fixed] = 2"), task("After", counter("R_After"))]
    return package(
        "read_only",
        children,
        [Con("Write", "After", 1)],
        [Var("Fixed", value="1", read_only=True), Var("R_After")],
        MaxErrorCount="0",
    )


def set_override() -> Exe:
    seq = Exe(
        "Seq",
        "seq",
        variables=[Var("Local", value="3")],
        children=[task("Copy", "@[User::LocalOut] = @[User::Local]")],
    )
    children = [task("Double", "@[User::Out] = @[User::X] * 2"), seq]
    return package(
        "set_override",
        children,
        [],
        [Var("X", value="1"), Var("Out"), Var("LocalOut"), Var("Name", "String", "none")],
    )


def system_vars() -> Exe:
    children = [
        task("Who", '@[User::Who] = @[System::PackageName] + "/" + @[System::TaskName]'),
        task("Interactive", "@[User::Interactive] = @[System::InteractiveMode]"),
    ]
    return package(
        "system_vars",
        children,
        [],
        [Var("Who", "String", ""), Var("Interactive", "Boolean", "True")],
    )


def concurrency() -> Exe:
    children = [task(f"T{i}", counter(f"R{i}")) for i in range(12)]
    children.append(task("Join", counter("Joined")))
    constraints = [Con(f"T{i}", "Join") for i in range(12)]
    return package(
        "concurrency",
        children,
        constraints,
        [Var(f"R{i}") for i in range(12)] + [Var("Joined")],
        MaxConcurrentExecutables="2",
    )


def unsupported() -> Exe:
    children = [Exe("Script", "script"), task("After", counter("R_After"))]
    return package("unsupported", children, [Con("Script", "After")], [Var("R_After")])


def RULES() -> Iterator[tuple[Exe, bool]]:  # noqa: N802 - a table
    yield constraint_matrix(), True
    yield and_or(), True
    yield never_satisfiable(), True
    yield disabled(), True
    yield force_result(), True
    yield max_errors("max_errors_default", None), True
    yield max_errors("max_errors_raised", "2"), True
    yield max_errors("max_errors_unlimited", "0"), True
    yield fail_parent(), True
    yield fail_package(), True
    yield bubbling("bubbling", True), True
    yield bubbling("propagate_false", False), True
    yield disabled_handlers(), True
    yield pre_execute_count(), True
    yield for_loop(), True
    yield for_loop_forever(), True
    yield sleeper(), True
    yield foreach_file(), True
    yield foreach_item(), True
    yield scoping(), True
    yield eval_as_expression(), True
    yield eval_recursion(), True
    yield read_only(), True
    yield set_override(), True
    yield system_vars(), True
    yield concurrency(), True
    yield unsupported(), True
