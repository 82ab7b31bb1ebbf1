"""Issue 9 item 2: once the final dot of a message is out, the message is never sent again.

A server that reads the whole message and closes without a reply may have queued it; resending
delivered it three times. Exactly one DATA transfer may arrive, and the error says why.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from dtsx.connections.smtp import SmtpSession
from dtsx.engine.errors import ConnectionManagerError

from tests._shared import REPO_ROOT
from tests.smtp_servers import ScriptedServer, script_drop_after_data, script_smtp

SENTENCE = (
    "closed the connection after receiving the message; it may have been delivered — not resent"
)


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "etl@example.test"
    msg["To"] = "ops@example.test"
    msg["Subject"] = "nightly load"
    msg.set_content("done\n")
    return msg


@pytest.mark.parametrize(
    "extensions",
    [(b"8BITMIME",), (b"8BITMIME", b"PIPELINING")],
    ids=["one-at-a-time", "pipelining"],
)
def test_a_drop_after_the_final_dot_is_not_resent(
    scripted_smtp_factory: Callable[..., ScriptedServer],
    open_session: Callable[[str], SmtpSession],
    extensions: tuple[bytes, ...],
) -> None:
    server = scripted_smtp_factory(
        functools.partial(script_smtp, drop_after_data=True, extensions=extensions)
    )
    session = open_session(server.connection_string(Timeout=5000))
    with pytest.raises(ConnectionManagerError) as info:
        session.send(_message(), sender="etl@example.test", recipients=["ops@example.test"])
    assert len(server.messages) == 1  # exactly one DATA transfer
    assert server.connections == 1
    text = str(info.value)
    assert f"SMTP server 127.0.0.1:{server.port} {SENTENCE}" in text
    assert "after 3 attempts" not in text and "Traceback" not in text


def test_the_next_message_still_goes_out_on_a_new_connection(
    scripted_smtp_factory: Callable[..., ScriptedServer], open_session: Callable[[str], SmtpSession]
) -> None:
    server = scripted_smtp_factory(script_drop_after_data, script_smtp)
    session = open_session(server.connection_string())
    with pytest.raises(ConnectionManagerError, match="not resent"):
        session.send(_message(), sender="etl@example.test", recipients=["ops@example.test"])
    report = session.send(_message(), sender="etl@example.test", recipients=["ops@example.test"])
    assert report.accepted == ("ops@example.test",)
    assert len(server.messages) == 2 and server.connections == 2


def test_send_mail_task_fails_once_with_the_sentence(
    scripted_smtp_factory: Callable[..., ScriptedServer],
) -> None:
    """Through the engine: the Send Mail sample against the dropping server."""
    executor = pytest.importorskip("dtsx.engine.executor")
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    server = scripted_smtp_factory(script_drop_after_data)
    package = load(REPO_ROOT / "samples" / "hello-mail.dtsx")
    overrides = {
        spec.name: server.connection_string()
        for spec in package.connections
        if spec.type_key == "SMTP"
    }
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        result = executor.run(build(package), executor.RunOptions(connections=overrides))
    finally:
        os.chdir(cwd)
    assert result.result == "Failure"
    assert len(server.messages) == 1
    errors = [e for x in result.executables for e in x.errors]
    assert any(SENTENCE in e for e in errors), errors
