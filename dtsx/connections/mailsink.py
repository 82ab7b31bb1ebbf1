"""Transitional alias: the development mail sink moved to :mod:`dtsx.mailsink` (it is a tool, not a
connection manager). Removed once the CLI imports it from there."""

from dtsx.mailsink import MailSink, ServerThread

__all__ = ["MailSink", "ServerThread"]
