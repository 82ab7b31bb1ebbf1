"""A message whose own checks refuse to write it on the wire (a DtsxError while it is flattened,
such as a header that would fold into an extra header line) fails the send with that sentence,
at once and without retries, instead of an "internal error, please report" message; nothing
reaches the server, and the connection stays usable for the next message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dtsx.connections.smtp import SmtpConnectionManager
from dtsx.engine.errors import ConnectionManagerError
from dtsx.tasks.mail_message import MailSpec, build_message

from tests.smtp_servers import LoopbackSmtpServer


def test_a_message_its_own_checks_refuse_on_the_wire_fails_with_their_sentence(
    smtp_server: LoopbackSmtpServer, smtp_manager: Callable[[str], SmtpConnectionManager]
) -> None:
    session = smtp_manager(smtp_server.connection_string()).acquire()
    message, sender, recipients = build_message(
        MailSpec(sender="etl@example.org", to="ops@example.com", subject="status", body="all done")
    )
    # A plugin adds a header after the build: no line break in it, but one once its encoded word
    # is decoded.
    message["X-Note"] = "=?utf-8?q?a=0D=0ABcc:_spy@example.net?="
    with pytest.raises(ConnectionManagerError) as caught:
        session.send(message, sender=sender, recipients=recipients)
    text = str(caught.value)
    assert text.startswith(
        f"the message was not sent to SMTP server 127.0.0.1:{smtp_server.port}: the X-Note header"
    )
    assert "line break" in text and "internal error" not in text and "report" not in text, text
    assert "attempts" not in text and text.count("X-Note") == 1, text
    assert smtp_server.messages == []
    del message["X-Note"]
    report = session.send(
        message, sender=sender, recipients=recipients
    )  # the same connection, unharmed
    assert report.delivered and len(smtp_server.messages) == 1 and smtp_server.connections == 1
