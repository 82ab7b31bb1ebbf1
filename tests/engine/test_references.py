"""The one resolver of connection references (engine/references.py), and that the planner, the
run's Connections collection and the overrides agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtsx.connections.collection import Connections
from dtsx.engine import executor
from dtsx.engine.errors import PackageValidationError
from dtsx.engine.loader import load_bytes
from dtsx.engine.model import ConnectionManagerSpec
from dtsx.engine.plan import build
from dtsx.engine.references import ConnectionReferences, guid_key
from tests._shared import REPO_ROOT
from tests.smtp_servers import LoopbackSmtpServer

GUID = "{6B1E1D84-20A6-4C8B-9C07-3F8F7C8A0301}"
PROJECT_GUID = "{0D15EA5E-0000-4000-8000-000000000002}"


def _spec(
    name: str, dtsid: str | None, scope: str = "Package", ref: str = ""
) -> ConnectionManagerSpec:
    return ConnectionManagerSpec(
        ref_id=ref or f"{scope}.ConnectionManagers[{name}]",
        name=name,
        dtsid=dtsid,
        creation_name="SMTP",
        type_key="SMTP",
        scope=scope,
    )


MAIL = _spec("Mail Server", GUID)
SHARED = _spec("Shared", PROJECT_GUID, scope="Project")
REFERENCES = ConnectionReferences([MAIL, SHARED])


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (GUID, MAIL),
        (GUID.lower(), MAIL),
        (GUID.strip("{}"), MAIL),
        (GUID.strip("{}").lower(), MAIL),
        (f"  {GUID}  ", MAIL),
        (f"{PROJECT_GUID}:external", SHARED),
        (f"{PROJECT_GUID.lower()}:EXTERNAL", SHARED),
        ("Mail Server", MAIL),
        ("mail server", MAIL),
        ("MAIL SERVER", MAIL),
        ("Package.ConnectionManagers[Mail Server]", MAIL),
        ("package.connectionmanagers[mail server]", MAIL),
        ("Project.ConnectionManagers[Shared]", SHARED),
        ("Project.ConnectionManagers[shared]", SHARED),
        ("shared", SHARED),
    ],
)
def test_each_reference_form_finds_its_manager(ref: str, expected: ConnectionManagerSpec) -> None:
    assert REFERENCES.find(ref) is expected


@pytest.mark.parametrize(
    "ref", ["", "   ", ":external", "Nope", "{00000000-0000-0000-0000-000000000000}"]
)
def test_a_reference_to_nothing_finds_nothing(ref: str) -> None:
    assert REFERENCES.find(ref) is None


def test_a_package_manager_wins_over_a_project_one_of_the_same_name() -> None:
    package = _spec("Mail", "{11111111-0000-4000-8000-000000000001}")
    project = _spec("Mail", "{22222222-0000-4000-8000-000000000002}", scope="Project")
    references = ConnectionReferences([package, project])
    assert references.find("Mail") is package
    assert references.find("mail") is package
    # Each is still reachable by its own DTSID and refId.
    assert references.find("{22222222-0000-4000-8000-000000000002}") is project
    assert references.find("Project.ConnectionManagers[Mail]") is project


def test_the_exact_name_wins_over_a_name_that_differs_only_in_case() -> None:
    upper, lower = _spec("MAIL", None), _spec("mail", None)
    references = ConnectionReferences([upper, lower])
    assert references.find("mail") is lower and references.find("MAIL") is upper
    assert references.find("Mail") is upper  # no exact match: the first in order


def test_guid_key_ignores_case_braces_and_outer_spaces_only() -> None:
    assert guid_key(" {ab-Cd} ") == guid_key("AB-cd") == "AB-CD"
    assert guid_key("{AB CD}") != guid_key("{ABCD}")


def test_the_collection_finds_what_the_resolver_finds() -> None:
    connections = Connections([MAIL, SHARED])
    for ref in (GUID.lower(), "mail server", "Project.ConnectionManagers[shared]", "Nope"):
        assert connections.find(ref) is REFERENCES.find(ref)


def _hello_mail(smtp_server: str) -> bytes:
    text = (REPO_ROOT / "samples" / "hello-mail.dtsx").read_text(encoding="utf-8")
    stored = 'SendMailTask:SMTPServer="{8A282414-AF37-45D1-B69F-3B215B0441C6}"'
    assert stored in text
    return text.replace(stored, f'SendMailTask:SMTPServer="{smtp_server}"').encode()


def test_a_name_in_another_case_plans_and_the_run_sends_through_it(
    smtp_server: LoopbackSmtpServer,
) -> None:
    # The disagreement issue 10 names: the run resolved this name, the planner refused it.
    pkg = load_bytes(_hello_mail("smtp connection manager"), file="hello-mail.dtsx")
    plan = build(pkg)
    conn = {"smtp connection manager": smtp_server.connection_string()}  # --conn in any case too
    result = executor.run(plan, executor.RunOptions(connections=conn))
    assert result.result == "Success", result
    assert len(smtp_server.messages) == 1


def test_a_reference_naming_nothing_is_still_refused() -> None:
    pkg = load_bytes(_hello_mail("No Such Manager"), file="hello-mail.dtsx")
    with pytest.raises(PackageValidationError) as info:
        build(pkg)
    assert any("No Such Manager" in p.message for p in info.value.problems)


def test_conn_given_by_a_guid_without_braces_replaces_the_checked_string(tmp_path: Path) -> None:
    # The stored string is one the SMTP manager refuses; --conn by the bare, lower-case DTSID
    # replaces it, so the planner checks the given string instead (as the run uses it).
    text = _hello_mail("{8A282414-AF37-45D1-B69F-3B215B0441C6}").decode()
    bad = "SmtpServer=localhost;UseWindowsAuthentication=False;EnableSsl=False;"
    pkg = load_bytes(text.replace(bad, "SmtpServer=localhost;Port=nope;").encode(), file="h.dtsx")
    with pytest.raises(PackageValidationError):
        build(pkg)
    build(pkg, connections={"8a282414-af37-45d1-b69f-3b215b0441c6": "SmtpServer=localhost;"})
