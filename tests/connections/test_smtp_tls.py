"""STARTTLS, implicit TLS, certificate checks and password authentication, on loopback servers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from dtsx.connections.smtp import SmtpConnectionManager, SmtpSession
from dtsx.engine.errors import ConnectionManagerError

from tests.smtp_servers import PASSWORDS, LoopbackSmtpServer, TlsMaterial


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "etl@example.test", "ops@example.test", "TLS"
    msg.set_content("secret figures\n")
    return msg


def send(session: SmtpSession) -> None:
    session.send(message(), sender="etl@example.test", recipients=["ops@example.test"])


def test_starttls_with_a_trusted_ca(
    starttls_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    session = smtp_manager(
        starttls_server.connection_string(EnableSsl="True", CaFile=starttls_server.ca_file)
    ).acquire()
    report = session.send(message(), sender="etl@example.test", recipients=["ops@example.test"])
    assert report.tls is not None and report.tls.startswith("TLS")
    assert [m.tls for m in starttls_server.messages] == [True]


def test_untrusted_certificate_is_refused(
    starttls_server: LoopbackSmtpServer,
    tls_material: TlsMaterial,
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    session = smtp_manager(
        starttls_server.connection_string(EnableSsl="True", CaFile=tls_material.other_ca_file)
    ).acquire()
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    text = str(info.value)
    assert (
        "cannot be trusted" in text
        and "CaFile" in text
        and f"127.0.0.1:{starttls_server.port}" in text
    )
    assert starttls_server.messages == [] and starttls_server.connections == 1  # not retried


def test_system_trust_alone_refuses_a_private_ca(
    starttls_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    with pytest.raises(ConnectionManagerError, match="cannot be trusted"):
        send(smtp_manager(starttls_server.connection_string(EnableSsl="True")).acquire())


def test_wrong_host_name_is_refused(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    tls_material: TlsMaterial,
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    server = smtp_server_factory(implicit_tls=tls_material.wrong_name_context)
    session = smtp_manager(
        server.connection_string(Security="Tls", CaFile=tls_material.ca_file)
    ).acquire()
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    assert "cannot be trusted" in str(info.value) and "127.0.0.1" in str(info.value)
    assert server.messages == []


def test_trust_server_certificate_skips_checks_and_warns(
    starttls_server: LoopbackSmtpServer,
    smtp_manager: Callable[[str], SmtpConnectionManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = smtp_manager(
        starttls_server.connection_string(EnableSsl="True", TrustServerCertificate="True")
    )
    with caplog.at_level(logging.WARNING, logger="dtsx.connections.smtp"):
        report = manager.acquire().send(
            message(), sender="etl@example.test", recipients=["ops@example.test"]
        )
    assert any("NOT checked" in w for w in report.warnings) and any(
        "NOT checked" in w for w in manager.warnings
    )
    assert "NOT checked" in caplog.text
    assert len(starttls_server.messages) == 1


def test_enable_ssl_without_starttls_never_falls_back(
    smtp_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    session = smtp_manager(
        smtp_server.connection_string(EnableSsl="True", UserName="alice", Password="Alice-Secret-1")
    ).acquire()
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    assert "does not offer STARTTLS" in str(info.value)
    assert smtp_server.messages == [] and smtp_server.handler.tried_mechanisms == []


def test_implicit_tls(
    smtps_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    session = smtp_manager(
        smtps_server.connection_string(Security="Tls", CaFile=smtps_server.ca_file)
    ).acquire()
    send(session)
    send(session)
    assert [m.tls for m in smtps_server.messages] == [True, True] and smtps_server.connections == 1


def test_implicit_tls_against_a_plain_server_fails_clearly(
    smtp_server: LoopbackSmtpServer,
    tls_material: TlsMaterial,
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    session = smtp_manager(
        smtp_server.connection_string(Security="Tls", CaFile=tls_material.ca_file)
    ).acquire()
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    assert "TLS handshake" in str(info.value) and "Security=Tls" in str(info.value)


@pytest.mark.parametrize("mechanism", ["Plain", "Login", "Auto"])
def test_password_auth_after_starttls(
    mechanism: str,
    starttls_server: LoopbackSmtpServer,
    smtp_manager: Callable[[str], SmtpConnectionManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DTSX_TEST_SMTP_PW", PASSWORDS["alice"])
    cs = starttls_server.connection_string(
        EnableSsl="True",
        CaFile=starttls_server.ca_file,
        UserName="alice",
        PasswordEnv="DTSX_TEST_SMTP_PW",
        AuthMechanism=mechanism,
    )
    report = (
        smtp_manager(cs)
        .acquire()
        .send(message(), sender="etl@example.test", recipients=["ops@example.test"])
    )
    expected = "PLAIN" if mechanism == "Auto" else mechanism.upper()
    assert report.mechanism == expected and starttls_server.handler.tried_mechanisms == [expected]
    assert starttls_server.messages[0].auth == "alice"


def test_password_auth_over_implicit_tls(
    smtps_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    cs = smtps_server.connection_string(
        Security="Tls", CaFile=smtps_server.ca_file, UserName="bob", Password=PASSWORDS["bob"]
    )
    report = (
        smtp_manager(cs)
        .acquire()
        .send(message(), sender="etl@example.test", recipients=["ops@example.test"])
    )
    assert report.mechanism == "PLAIN" and smtps_server.messages[0].auth == "bob"


def test_plain_text_password_is_never_sent_without_tls(
    smtp_server_factory: Callable[..., LoopbackSmtpServer],
    smtp_manager: Callable[[str], SmtpConnectionManager],
) -> None:
    server = smtp_server_factory(
        password_auth=True, auth_required=True
    )  # offers PLAIN LOGIN in clear
    session = smtp_manager(
        server.connection_string(UserName="alice", Password=PASSWORDS["alice"])
    ).acquire()
    with pytest.raises(ConnectionManagerError) as info:
        send(session)
    assert "clear-text" in str(info.value) and "AllowPlainTextAuth=True" in str(info.value)
    assert server.handler.tried_mechanisms == [] and server.messages == []
    allowed = smtp_manager(
        server.connection_string(
            UserName="alice", Password=PASSWORDS["alice"], AllowPlainTextAuth="True"
        )
    ).acquire()
    send(allowed)
    assert server.handler.tried_mechanisms == ["PLAIN"] and len(server.messages) == 1


def test_wrong_password_is_refused_and_never_shown(
    starttls_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    wrong = "Wr0ng-Pa55word-xyz"
    manager = smtp_manager(
        starttls_server.connection_string(
            EnableSsl="True", CaFile=starttls_server.ca_file, UserName="alice", Password=wrong
        )
    )
    with pytest.raises(ConnectionManagerError) as info:
        send(manager.acquire())
    err = info.value
    assert (
        err.code == 535
        and "refused authentication with PLAIN as alice" in str(err)
        and "535 5.7.8" in str(err)
    )
    for shown in (
        str(err),
        repr(err),
        err.reply or "",
        repr(manager),
        repr(manager.acquire()),
        repr(manager.settings),
    ):
        assert wrong not in shown
    assert (
        starttls_server.messages == [] and starttls_server.connections == 1
    )  # a 535 is not retried
