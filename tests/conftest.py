"""Fixtures shared by every test folder."""

from __future__ import annotations

# Real SMTP servers on loopback (see tests/smtp_servers.py for what each fixture yields).
from tests.smtp_servers import (  # noqa: F401
    kerberos_realm,
    mail_sink,
    negotiate_server,
    ntlm_server,
    ntlm_user_file,
    open_session,
    scripted_smtp_factory,
    smtp_server,
    smtp_manager,
    smtp_server_factory,
    smtps_server,
    starttls_server,
    tls_material,
)

# A throwaway PostgreSQL cluster on loopback (see tests/dbservers.py for what each fixture yields).
from tests.dbservers import postgres, postgres_db, postgres_odbc  # noqa: E402, F401
