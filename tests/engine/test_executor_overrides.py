"""--set property paths, --param, --conn and CM.<conn>.<prop>: parsing and application."""

from __future__ import annotations

import pytest

from dtsx.engine import executor, plan
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.executor import RunOptions, parse_set
from dtsx.engine.expressions import compile as compile_expression
from dtsx.engine.model import ConnectionManagerSpec, ExecutableKind, Parameter
from dtsx.engine.overrides import Overrides
from dtsx.engine.variables import Scope, VariableStore
from tests.engine._probe import LEDGER, container, package, probe, var


@pytest.fixture(autouse=True)
def _clean_ledger() -> None:
    LEDGER.reset()


@pytest.mark.parametrize(
    ("text", "kind", "container", "name", "value", "connection"),
    [
        ("User::X=a=b", "variable", "Package", "User::X", "a=b", None),
        ("X=1", "variable", "Package", "User::X", "1", None),
        ("$Package::P=2", "variable", "Package", "$Package::P", "2", None),
        (
            "\\Package.Variables[User::X].Properties[Value];v;w",
            "variable",
            "Package",
            "User::X",
            "v;w",
            None,
        ),
        (
            "\\package\\Seq\\T.Variables[Y].Value;3",
            "variable",
            "Package\\Seq\\T",
            "User::Y",
            "3",
            None,
        ),
        (
            "\\Package\\Seq\\T.Properties[Description];d",
            "property",
            "Package\\Seq\\T",
            "Description",
            "d",
            None,
        ),
        (
            "\\Package.Connections[SMTP CM].Properties[ConnectionString];SmtpServer=x;",
            "connection",
            "Package",
            "ConnectionString",
            "SmtpServer=x;",
            "SMTP CM",
        ),
        (
            "\\Package.EventHandlers[OnError].Variables[System::Cancel].Properties[Value];True",
            "variable",
            "Package.EventHandlers[OnError]",
            "System::Cancel",
            "True",
            None,
        ),
        (
            "\\Package.Properties[MaxConcurrentExecutables];3",
            "property",
            "Package",
            "MaxConcurrentExecutables",
            "3",
            None,
        ),
    ],
)
def test_parse_set_forms(
    text: str, kind: str, container: str, name: str, value: str, connection: str | None
) -> None:
    item = parse_set(text)
    assert (item.kind, item.container, item.name, item.value, item.connection) == (
        kind,
        container,
        name,
        value,
        connection,
    )


@pytest.mark.parametrize(
    "text",
    [
        "NoEquals",
        "=1",
        "\\Package.Variables[User::X].Value",
        "\\Package.Nonsense[X];1",
        "\\Package",
    ],
)
def test_parse_set_rejects_malformed_input(text: str) -> None:
    with pytest.raises(PackageValidationError) as info:
        parse_set(text)
    assert all(p.code == "override-invalid" for p in info.value.problems)


def _smtp() -> ConnectionManagerSpec:
    return ConnectionManagerSpec(
        ref_id="Package.ConnectionManagers[Mail]",
        name="Mail",
        dtsid="{AB-CD}",
        creation_name="SMTP",
        type_key="SMTP",
        connection_string="SmtpServer=old;UseWindowsAuthentication=False;EnableSsl=False;",
    )


def _overrides(options: RunOptions) -> tuple[object, list[ConnectionManagerSpec], dict[str, str]]:
    """Apply the options' overrides as a run does, without running."""
    built = plan.build(package([probe("T")], connections=[_smtp()]))
    store = VariableStore(lambda text, assign: compile_expression(text, assignment=assign))
    overrides = Overrides(built, store, lambda exe: [])
    overrides.parameters(options.parameters)
    overrides.connections(options.connections)
    root = Scope(store, None, "Package")
    overrides.sets(options.sets, root)
    if overrides.problems:
        raise PackageValidationError(overrides.problems)
    return root, overrides.specs, overrides.connection_strings


def test_cm_parameter_sets_one_key_of_the_connection_string() -> None:
    _, specs, strings = _overrides(RunOptions(parameters={"CM.Mail.SmtpServer": "new.example"}))
    assert (
        strings["Mail"] == "SmtpServer=new.example;UseWindowsAuthentication=False;EnableSsl=False;"
    )
    assert specs[0].properties["SmtpServer"] == "new.example"


def test_a_cm_parameter_leaves_a_url_connection_string_whole() -> None:
    # A URL has no keys: the property goes to the manager as a property, never into the URL
    # (``sqlite:////tmp/x.db;Translate=tsql;`` would name another file).
    url = "sqlite:////tmp/x.db"
    _, specs, strings = _overrides(
        RunOptions(parameters={"CM.Mail.ConnectionString": url, "CM.Mail.Translate": "tsql"})
    )
    assert strings["Mail"] == url
    assert specs[0].properties["Translate"] == "tsql"


def test_conn_by_dtsid_wins_over_cm_parameters() -> None:
    _, _, strings = _overrides(
        RunOptions(parameters={"CM.Mail.SmtpServer": "a"}, connections={"{ab-cd}": "SmtpServer=b;"})
    )
    assert strings == {"Mail": "SmtpServer=b;"}


def test_set_connection_property_path() -> None:
    sets = [parse_set("\\Package.Connections[Mail].Properties[EnableSsl];True")]
    _, _, strings = _overrides(RunOptions(sets=sets))
    assert "EnableSsl=True;" in strings["Mail"]


def test_every_bad_override_is_reported_at_once() -> None:
    options = RunOptions(
        sets=[parse_set("User::Nope=1"), parse_set("\\Package\\Ghost.Properties[X];1")],
        parameters={"Missing": "1"},
        connections={"NoSuchConn": "x"},
    )
    with pytest.raises(PackageValidationError) as info:
        _overrides(options)
    codes = sorted(p.code for p in info.value.problems)
    assert codes == [
        "override-connection",
        "override-parameter",
        "override-path",
        "override-variable",
    ]
    assert LEDGER.ran == []


def test_set_task_and_container_properties() -> None:
    seq = container("Seq", ExecutableKind.SEQUENCE, "Package", [probe("Inner", "Package\\Seq")])
    pkg = package([seq, probe("Reader", mode="ok")], variables=[var("Seen", 8, "")])
    sets = [
        parse_set("\\Package\\Seq.Properties[Disable];True"),
        parse_set("\\Package\\Reader.Properties[Mode];read"),
        parse_set("\\Package\\Reader.Properties[Target];User::Seen"),
        parse_set("\\Package.Properties[MaxConcurrentExecutables];1"),
    ]
    result = executor.run(plan.build(pkg), RunOptions(sets=sets))
    assert result.result == "Success"
    assert "Inner" not in LEDGER.ran and LEDGER.values["Reader"] == ""
    assert result.executable("Package\\Seq").result == "NotRun"


def test_set_a_parameter_through_the_variables_path() -> None:
    param = Parameter(name="P", scope="Package", dotnet_type="Int32", data_type_code=3, value="1")
    pkg = package([probe("Read", mode="read", target="$Package::P")], parameters=[param])
    executor.run(
        plan.build(pkg), RunOptions(sets=[parse_set("\\Package.Variables[$Package::P];9")])
    )
    assert LEDGER.values["Read"] == 9


def test_sensitive_prefix_is_accepted() -> None:
    item = parse_set("$Sensitive::\\Package.Variables[User::Secret].Value;s3cret")
    assert (item.name, item.value) == ("User::Secret", "s3cret")


def test_sensitive_values_never_appear_in_errors() -> None:
    sets = [
        parse_set("$Sensitive::User::X=hunter2"),
        parse_set("$Sensitive::\\Package.Variables[User::Nope].Value;hunter2"),
    ]
    pkg = package([probe("T")], variables=[var("X")])
    with pytest.raises(PackageValidationError) as info:
        executor.run(plan.build(pkg), RunOptions(sets=sets))
    assert "hunter2" not in str(info.value)
    assert "User::X" in str(info.value) and "User::Nope" in str(info.value)


@pytest.mark.parametrize("text", ["treu", "yes", "2"])
def test_a_boolean_property_refuses_what_ssis_would_not_read_as_one(text: str) -> None:
    seq = container("Seq", ExecutableKind.SEQUENCE, "Package", [probe("Inner", "Package\\Seq")])
    sets = [parse_set(f"\\Package\\Seq.Properties[Disable];{text}")]
    result = executor.run(plan.build(package([seq])), RunOptions(sets=sets))
    record = result.executable("Package\\Seq")
    assert record.result == "Failure" and "Inner" not in LEDGER.ran
    assert record.errors == [f"property Disable of 'Package\\\\Seq' cannot take the value {text!r}"]
