"""UseWindowsAuthentication=True as .NET does it: GSSAPI/SPNEGO (Kerberos, NTLM inside), else
AUTH NTLM.

NTLM runs against a pyspnego acceptor reading NTLM_USER_FILE; Kerberos against a throwaway MIT
realm made by k5test (skipped with the reason where the KDC binaries or gssapi are missing).
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from dtsx.connections import smtp_auth
from dtsx.connections.smtp import SmtpSession
from dtsx.engine.errors import ConnectionManagerError

from tests.smtp_servers import (
    KerberosRealm,
    LoopbackSmtpServer,
    ScriptedServer,
    script_smtp,
)


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "etl@example.test", "ops@example.test", "Windows auth"
    msg.set_content("hello\n")
    return msg


def send(session: SmtpSession) -> str | None:
    return session.send(
        message(), sender="etl@example.test", recipients=["ops@example.test"]
    ).mechanism


# -- NTLM ---------------------------------------------------------------------------------------


def test_ntlm_with_credentials_from_ntlm_user_file(
    ntlm_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    session = open_session(ntlm_server.connection_string(UseWindowsAuthentication="True"))
    assert send(session) == "NTLM" and send(session) == "NTLM"
    assert ntlm_server.handler.tried_mechanisms == ["NTLM"]  # once per connection, not per message
    assert [m.auth for m in ntlm_server.messages] == [
        "TESTDOM\\alice"
    ] * 2  # first entry of the file


def test_ntlm_with_explicit_user_and_password_env(
    ntlm_server: LoopbackSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[[str], SmtpSession],
) -> None:
    monkeypatch.setenv("DTSX_TEST_NTLM_PW", "BobPass2")
    session = open_session(
        ntlm_server.connection_string(
            UseWindowsAuthentication="True", UserName="bob", PasswordEnv="DTSX_TEST_NTLM_PW"
        )
    )
    assert send(session) == "NTLM" and ntlm_server.messages[0].auth == "bob"


def test_ntlm_wrong_password_is_refused_without_showing_it(
    ntlm_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    wrong = "Not-Alices-Pass-9"
    session = open_session(
        ntlm_server.connection_string(
            UseWindowsAuthentication="True", UserName="alice", Domain="TESTDOM", Password=wrong
        )
    )
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    err = info.value
    assert err.code == 535 and "refused authentication with NTLM as TESTDOM\\alice" in str(err)
    assert wrong not in str(err) and wrong not in repr(session) and wrong not in (err.reply or "")
    assert ntlm_server.messages == [] and ntlm_server.connections == 1


def test_ntlm_without_initial_response_reads_334_ntlm_supported(
    ntlm_server: LoopbackSmtpServer,
    open_session: Callable[[str], SmtpSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Past this line length the token goes after the server's first 334 (here "334 NTLM supported").
    monkeypatch.setattr(smtp_auth, "MAX_INITIAL_RESPONSE_LINE", 10)
    assert (
        send(open_session(ntlm_server.connection_string(UseWindowsAuthentication="True"))) == "NTLM"
    )
    assert ntlm_server.messages[0].auth == "TESTDOM\\alice"


async def _ntlm_acceptor(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes
) -> bool:
    """AUTH ntlm answered by hand, as a server that advertises lower-case names might."""
    import spnego

    ctx = spnego.server(protocol="ntlm")
    token = base64.b64decode(line.split()[2])
    writer.write(b"334 " + base64.b64encode(ctx.step(token) or b"") + b"\r\n")
    await writer.drain()
    try:
        ctx.step(base64.b64decode((await reader.readline()).strip()))
    except Exception:  # noqa: BLE001 - any acceptor failure is a 535
        writer.write(b"535 5.7.8 Authentication credentials invalid\r\n")
        return False
    writer.write(b"235 2.7.0 Authentication successful\r\n")
    return True


def test_lower_case_mechanism_names_are_understood(
    scripted_smtp_factory: Callable[..., ScriptedServer],
    ntlm_user_file: Path,
    open_session: Callable[[str], SmtpSession],
) -> None:
    script = functools.partial(script_smtp, extensions=(b"AUTH login ntlm",), auth=_ntlm_acceptor)
    server = scripted_smtp_factory(script)
    assert send(open_session(server.connection_string(UseWindowsAuthentication="True"))) == "NTLM"
    assert [line.split()[:2] for line in server.auth_lines] == [["AUTH", "NTLM"]] and len(
        server.messages
    ) == 1


def test_windows_auth_never_uses_plain_or_login(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    open_session: Callable[[str], SmtpSession],
) -> None:
    server = smtp_server_factory(password_auth=True)  # offers only PLAIN LOGIN, relays anonymously
    report = open_session(server.connection_string(UseWindowsAuthentication="True")).send(
        message(), sender="etl@example.test", recipients=["ops@example.test"]
    )
    assert server.handler.tried_mechanisms == [] and report.mechanism is None
    assert any("sent without authentication, as SSIS does" in w for w in report.warnings)


def test_ntlm_not_offered_when_asked_explicitly(
    smtp_server: LoopbackSmtpServer, open_session: Callable[[str], SmtpSession]
) -> None:
    with pytest.raises(ConnectionManagerError) as info:
        send(open_session(smtp_server.connection_string(AuthMechanism="Ntlm")))
    assert (
        "does not offer AUTH NTLM (it offers: none)" in str(info.value)
        and smtp_server.messages == []
    )


# -- Kerberos / Negotiate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        {"SmtpServer": "localhost"},
        {"SmtpServer": "127.0.0.1", "ServicePrincipalName": "SMTPSVC/localhost"},
        {"SmtpServer": "127.0.0.1", "ServicePrincipalName": "SMTPSVC@localhost"},
    ],
    ids=["default-spn", "explicit-spn", "host-based-spn"],
)
def test_negotiate_uses_the_kerberos_ticket_cache(
    where: dict[str, str],
    negotiate_server: LoopbackSmtpServer,
    kerberos_realm: KerberosRealm,
    open_session: Callable[[str], SmtpSession],
) -> None:
    session = open_session(
        negotiate_server.connection_string(UseWindowsAuthentication="True", **where)
    )
    assert send(session) == "GSSAPI"
    assert negotiate_server.handler.tried_mechanisms == [
        "GSSAPI"
    ]  # NTLM is offered too, but not needed
    assert negotiate_server.messages[0].auth == kerberos_realm.user


def test_raw_kerberos_mechanism(
    negotiate_server: LoopbackSmtpServer,
    kerberos_realm: KerberosRealm,
    open_session: Callable[[str], SmtpSession],
) -> None:
    session = open_session(
        negotiate_server.connection_string(SmtpServer="localhost", AuthMechanism="Kerberos")
    )
    assert send(session) == "GSSAPI" and negotiate_server.messages[0].auth == kerberos_realm.user


def test_kerberos_with_a_password_instead_of_a_ticket(
    negotiate_server: LoopbackSmtpServer,
    kerberos_realm: KerberosRealm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[[str], SmtpSession],
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty-ccache'}")
    monkeypatch.setenv("DTSX_TEST_KRB_PW", kerberos_realm.password)
    session = open_session(
        negotiate_server.connection_string(
            SmtpServer="localhost",
            UseWindowsAuthentication="True",
            UserName=kerberos_realm.user,
            PasswordEnv="DTSX_TEST_KRB_PW",
        )
    )
    assert send(session) == "GSSAPI" and negotiate_server.messages[0].auth == kerberos_realm.user


def test_ntlm_inside_spnego_when_no_ticket_serves(
    negotiate_server: LoopbackSmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[[str], SmtpSession],
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty-ccache'}")
    session = open_session(
        negotiate_server.connection_string(
            SmtpServer="localhost",
            UseWindowsAuthentication="True",
            UserName="alice",
            Domain="TESTDOM",
            Password="AlicePass1",
        )
    )
    assert send(session) == "GSSAPI"
    assert negotiate_server.handler.tried_mechanisms == ["GSSAPI"]
    assert negotiate_server.messages[0].auth == "TESTDOM\\alice"


def test_unknown_spn_fails_before_auth_is_sent(
    negotiate_server: LoopbackSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[[str], SmtpSession],
) -> None:
    monkeypatch.delenv("NTLM_USER_FILE")  # no NTLM fallback either: Kerberos is the only way
    session = open_session(
        negotiate_server.connection_string(
            SmtpServer="localhost",
            AuthMechanism="Kerberos",
            ServicePrincipalName="SMTPSVC/nosuchhost",
        )
    )
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    text = str(info.value)
    assert "GSSAPI failed on this machine" in text and "ServicePrincipalName" in text
    assert negotiate_server.handler.tried_mechanisms == [] and negotiate_server.connections == 1


def test_no_credentials_at_all_says_how_to_get_them(
    negotiate_server: LoopbackSmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_session: Callable[[str], SmtpSession],
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty-ccache'}")
    monkeypatch.delenv("NTLM_USER_FILE")
    session = open_session(
        negotiate_server.connection_string(SmtpServer="localhost", UseWindowsAuthentication="True")
    )
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    assert "kinit" in str(info.value) and "NTLM_USER_FILE" in str(info.value)
    assert negotiate_server.messages == []
