"""SMTP connection-manager settings: SSIS's connection string, extension keys, static checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtsx.connections.base import CONNECTIONS, ConnectionSettings
from dtsx.connections.smtp import SmtpConnectionManager
from dtsx.connections.smtp_options import (
    AuthMechanism,
    Security,
    parse_smtp_options,
    smtp_option_problems,
)
from dtsx.engine.errors import ConnectionManagerError


def settings(text: str, **properties: str) -> ConnectionSettings:
    return ConnectionSettings(
        name="SMTP CM", creation_name="SMTP", connection_string=text, properties=properties
    )


def test_ssis_connection_string_as_saved_by_the_designer() -> None:
    opts = parse_smtp_options(
        settings(
            "SmtpServer=mail.contoso.com;UseWindowsAuthentication=True;EnableSsl=False;Timeout=2000;"
        )
    )
    assert (opts.server, opts.port, opts.windows_auth, opts.security) == (
        "mail.contoso.com",
        25,
        True,
        Security.NONE,
    )
    assert opts.timeout == 2.0  # SSIS's Timeout is milliseconds
    assert opts.spn == "SMTPSVC/mail.contoso.com"  # what .NET asks Kerberos for


def test_defaults_bare_host_and_case_insensitive_keys() -> None:
    bare = parse_smtp_options(settings("smtphost"))
    assert (bare.server, bare.port, bare.timeout, bare.security, bare.windows_auth) == (
        "smtphost",
        25,
        100.0,
        Security.NONE,
        False,
    )
    mixed = parse_smtp_options(settings("smtpserver=h1;ENABLESSL=true;usewindowsauthentication=-1"))
    assert (mixed.server, mixed.security, mixed.windows_auth) == ("h1", Security.STARTTLS, True)


def test_runtime_properties_override_the_string() -> None:
    opts = parse_smtp_options(
        settings(
            "SmtpServer=old;Timeout=1000;",
            SmtpServer="new.example",
            Timeout="30000",
            EnableSsl="True",
            ConnectByProxy="False",
        )
    )
    assert (opts.server, opts.timeout, opts.security) == ("new.example", 30.0, Security.STARTTLS)


def test_extension_keys() -> None:
    opts = parse_smtp_options(
        settings(
            "SmtpServer=h;Port=587;Security=StartTls;UserName=alice;Password=pw;Domain=CORP;AuthMechanism=ntlm;"
            "ServicePrincipalName=smtp/mx.corp;TrustServerCertificate=True;AllowPlainTextAuth=yes"
        )
    )
    assert (opts.port, opts.security, opts.principal, opts.mechanism) == (
        587,
        Security.STARTTLS,
        "CORP\\alice",
        AuthMechanism.NTLM,
    )
    assert (
        opts.spn == "smtp/mx.corp" and opts.allow_plaintext_auth and opts.trust_server_certificate
    )
    assert any("NOT checked" in w for w in opts.warnings)  # certificate checks off: said loudly
    assert parse_smtp_options(settings("SmtpServer=h;Security=Tls")).port == 465


def test_unknown_key_suggests_the_nearest() -> None:
    with pytest.raises(ConnectionManagerError) as info:
        parse_smtp_options(settings("SmtpServer=h;EnabelSsl=True;"))
    text = str(info.value)
    assert (
        "'EnabelSsl'" in text
        and "did you mean EnableSsl" in text
        and "UseWindowsAuthentication" in text
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("UseWindowsAuthentication=False", "no SmtpServer"),
        ("SmtpServer=h;Port=99999", "Port='99999'"),
        ("SmtpServer=h;Port=abc", "Port='abc'"),
        ("SmtpServer=h;EnableSsl=maybe", "EnableSsl='maybe' is not a boolean"),
        ("SmtpServer=h;Timeout=fast", "Timeout='fast'"),
        ("SmtpServer=h;Timeout=-5", "negative"),
        ("SmtpServer=h;Security=Ssl3", "Security='Ssl3' is not one of"),
        ("SmtpServer=h;EnableSsl=True;Security=None", "contradicts"),
        ("SmtpServer=h:587", "Port=587"),
        (
            "SmtpServer=h;UseWindowsAuthentication=True;AuthMechanism=Plain;UserName=u;Password=p",
            "cannot be used",
        ),
        ("SmtpServer=h;AuthMechanism=Login;UserName=u", "needs UserName and a password"),
        ("SmtpServer=h;Password=p;PasswordEnv=X", "give the password one way only"),
        ("SmtpServer=h;CaFile=/no/such/ca.pem", "CaFile=/no/such/ca.pem"),
    ],
)
def test_check_reports_static_problems(text: str, fragment: str) -> None:
    problems = SmtpConnectionManager.check(settings(text))
    assert any(fragment in p for p in problems), problems
    assert all(p.startswith("SMTP connection manager 'SMTP CM': ") for p in problems)


def test_check_lists_every_problem_and_is_empty_when_fine() -> None:
    assert len(smtp_option_problems(settings("Port=0;EnableSsl=perhaps;Bogus=1"))) == 4
    assert (
        SmtpConnectionManager.check(
            settings("SmtpServer=h;UseWindowsAuthentication=False;EnableSsl=True;")
        )
        == []
    )


def test_timeout_zero_means_the_default_and_short_ones_warn() -> None:
    assert parse_smtp_options(settings("SmtpServer=h;Timeout=0")).timeout == 100.0
    assert any(
        "milliseconds" in w
        for w in parse_smtp_options(settings("SmtpServer=h;Timeout=30")).warnings
    )


def test_password_from_environment_and_file(tmp_path: Path) -> None:
    env = {"SMTP_PW": "from-env-1"}
    assert (
        parse_smtp_options(
            settings("SmtpServer=h;UserName=u;PasswordEnv=SMTP_PW"), env
        ).password.reveal()
        == "from-env-1"
    )
    secret = tmp_path / "pw.txt"
    secret.write_text("from file 2\n", encoding="utf-8")
    secret.chmod(
        0o600
    )  # other users must not be able to read it (see test_smtp_hardening_password_file)
    opts = parse_smtp_options(settings(f"SmtpServer=h;UserName=u;PasswordFile={secret}"), env)
    assert opts.password is not None and opts.password.reveal() == "from file 2"
    problems = smtp_option_problems(
        settings("SmtpServer=h;UserName=u;PasswordEnv=NOT_SET_ANYWHERE"), env
    )
    assert any("NOT_SET_ANYWHERE" in p and "not set" in p for p in problems)
    latin = tmp_path / "latin1.txt"  # not UTF-8: a problem naming the file, not a traceback
    latin.write_bytes(b"caf\xe9\n")
    latin.chmod(0o600)
    problems = smtp_option_problems(settings(f"SmtpServer=h;UserName=u;PasswordFile={latin}"), env)
    assert any(f"PasswordFile={latin} cannot be read" in p for p in problems)


def test_password_never_shown() -> None:
    cs = "SmtpServer=h;UserName=alice;Password=Sup3r-Secret;"
    manager = SmtpConnectionManager(settings(cs))
    assert "Sup3r-Secret" not in repr(manager)
    assert "Sup3r-Secret" not in repr(manager.options) and "Sup3r-Secret" not in str(
        manager.options.password
    )
    bad = SmtpConnectionManager(settings(cs + "Port=x;"))
    with pytest.raises(ConnectionManagerError) as info:
        bad.acquire()
    assert "Sup3r-Secret" not in str(info.value) and "Sup3r-Secret" not in repr(bad)


def test_registered_under_smtp() -> None:
    assert CONNECTIONS.get("SMTP") is SmtpConnectionManager
