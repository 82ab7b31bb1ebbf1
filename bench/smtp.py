"""Send Mail throughput against a loopback SMTP sink that accepts and discards.

Compares, for N messages (default 1,000), plain and under STARTTLS (trustme certificates):

* dtsx: a package built here - a Foreach Loop (File enumerator over N files) around a Send Mail
  task whose Subject and body come from property expressions - run by the real loader, planner
  and executor through the real SMTP connection manager (which keeps one connection per run);
* raw smtplib, the same N messages over one connection (the ceiling for a Python client);
* raw smtplib connecting anew for every message, which is what SSIS does (.NET SmtpClient
  opens a connection per Send).

Three sinks: plain; STARTTLS; and STARTTLS offering PIPELINING (RFC 2920), as Exchange and
Postfix do. aiosmtpd does not offer it by itself, and neither raw smtplib nor .NET pipelines,
so only dtsx's figure changes there: it writes MAIL, RCPT and DATA together when offered.

The sink runs in a separate process (so it does not compete for the client's GIL) and the three
contenders are interleaved within each repetition. Prints messages per second (median of the
repetitions, after one untimed warm-up round) and the ratios the targets are stated in:
dtsx >= 50% of raw smtplib on one connection; dtsx >= 3x connect-per-message under STARTTLS.

    python bench/smtp.py [--n 1000] [--reps 3]

Not a test: it prints figures and exits 0; it exits 1 if a run lost or failed a message.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, Envelope, Session
from dtsx.mailsink import ServerThread
from dtsx.tasks.mail_message import MailSpec, build_message

__all__ = ["main"]

HOST = "127.0.0.1"
SENDER = "bench@example.org"
RECIPIENT = "sink@example.com"


class _Discard:
    """aiosmtpd handler: count (in memory shared with the parent) and drop; optionally offer
    PIPELINING, as production servers (Exchange, Postfix) do and aiosmtpd by itself does not."""

    def __init__(self, counter: Any, pipelining: bool) -> None:
        self.counter = counter
        self.pipelining = pipelining

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 2.0.0 discarded"


def _sink_process(pipe: Any, counter: Any, cert_chain: str | None, pipelining: bool) -> None:
    """The sink, in its own process so that it does not share the client's GIL."""
    server_ctx = None
    if cert_chain is not None:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert_chain)
    handler = _Discard(counter, pipelining)

    def factory(loop: asyncio.AbstractEventLoop) -> SMTP:
        return SMTP(
            handler,
            hostname="bench.sink",
            decode_data=False,
            loop=loop,
            tls_context=server_ctx,
            require_starttls=server_ctx is not None,
        )

    thread = ServerThread(factory, HOST, 0)
    thread.start()
    pipe.send(thread.port)
    pipe.recv()  # any message, or the parent closing the pipe, means stop
    thread.stop()


@dataclass
class Sink:
    process: Any
    pipe: Any
    counter: Any
    port: int
    tls: bool

    @property
    def count(self) -> int:
        return int(self.counter.value)

    def stop(self) -> None:
        try:
            self.pipe.send("stop")
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def _start_sink(cert_chain: str | None, pipelining: bool) -> Sink:
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe()
    counter = mp.Value("l", 0)
    process = mp.Process(
        target=_sink_process, args=(child, counter, cert_chain, pipelining), daemon=True
    )
    process.start()
    if not parent.poll(30):
        process.terminate()
        raise SystemExit("the SMTP sink process did not start within 30 s")
    return Sink(process, parent, counter, int(parent.recv()), cert_chain is not None)


def _message(i: int) -> EmailMessage:
    # Byte for byte what the package's property expressions make for file<i>.txt (Subject and
    # MessageSource), so that every contender sends the same messages; parsed back into the
    # email package's own header objects, so that the raw baselines pay the standard library's
    # cost to serialise them and not dtsx's (whose faster headers would speed up the baseline).
    name = f"file{i:05d}.txt"
    body = f"Message {name} of the benchmark.\nSecond line.\n"
    built = build_message(
        MailSpec(sender=SENDER, to=RECIPIENT, subject=f"Message {name}", body=body)
    )[0]
    parsed = message_from_bytes(built.as_bytes(policy=SMTP_POLICY), policy=SMTP_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _client_context(ca_pem: Path) -> ssl.SSLContext:
    """The trust dtsx uses with CaFile: the system's CAs plus the bench CA."""
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=str(ca_pem))
    return ctx


# Every contender builds its TLS context inside its timed run, once, as dtsx does when it opens
# its connection (loading the system CA store takes 20-80 ms here, a few % of a 1,000-message run).
def _raw_one_connection(sink: Sink, messages: list[EmailMessage], ca_pem: Path) -> float:
    start = time.perf_counter()
    client_ctx = _client_context(ca_pem) if sink.tls else None
    with smtplib.SMTP(HOST, sink.port, timeout=30) as smtp:
        if client_ctx is not None:
            smtp.starttls(context=client_ctx)
        for msg in messages:
            smtp.send_message(msg, from_addr=SENDER, to_addrs=[RECIPIENT])
    return time.perf_counter() - start


def _raw_connect_each(sink: Sink, messages: list[EmailMessage], ca_pem: Path) -> float:
    start = time.perf_counter()
    client_ctx = _client_context(ca_pem) if sink.tls else None  # one context for every connection
    for msg in messages:
        with smtplib.SMTP(HOST, sink.port, timeout=30) as smtp:
            if client_ctx is not None:
                smtp.starttls(context=client_ctx)
            smtp.send_message(msg, from_addr=SENDER, to_addrs=[RECIPIENT])
    return time.perf_counter() - start


_PACKAGE = """<?xml version="1.0"?>
<DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package"
  DTS:CreationName="Microsoft.Package" DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0001}}"
  DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="bench-smtp" DTS:ProtectionLevel="0">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[SMTP]" DTS:CreationName="SMTP"
      DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0002}}" DTS:ObjectName="SMTP">
      <DTS:ObjectData><SmtpConnectionManager ConnectionString="{conn}" /></DTS:ObjectData>
    </DTS:ConnectionManager>
  </DTS:ConnectionManagers>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0003}}"
      DTS:Namespace="User" DTS:ObjectName="FileName">
      <DTS:VariableValue DTS:DataType="8"></DTS:VariableValue>
    </DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Loop" DTS:CreationName="STOCK:FOREACHLOOP"
      DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0004}}" DTS:ExecutableType="STOCK:FOREACHLOOP"
      DTS:ObjectName="Loop">
      <DTS:ForEachEnumerator DTS:CreationName="Microsoft.ForEachFileEnumerator"
        DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0005}}" DTS:ObjectName="Files">
        <DTS:ObjectData>
          <ForEachFileEnumeratorProperties>
            <FEFEProperty Folder="{folder}" />
            <FEFEProperty FileSpec="*.txt" />
            <FEFEProperty FileNameRetrievalType="1" />
            <FEFEProperty Recurse="0" />
          </ForEachFileEnumeratorProperties>
        </DTS:ObjectData>
      </DTS:ForEachEnumerator>
      <DTS:Variables />
      <DTS:Executables>
        <DTS:Executable DTS:refId="Package\\Loop\\Send" DTS:CreationName="Microsoft.SendMailTask"
          DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0006}}"
          DTS:ExecutableType="Microsoft.SendMailTask" DTS:ObjectName="Send">
          <DTS:Variables />
          <DTS:PropertyExpression
            DTS:Name="Subject">"Message " + @[User::FileName]</DTS:PropertyExpression>
          <DTS:PropertyExpression DTS:Name="MessageSource">"Message " + @[User::FileName]
            + " of the benchmark.\\nSecond line.\\n"</DTS:PropertyExpression>
          <DTS:ObjectData>
            <SendMailTask:SendMailTaskData
              SendMailTask:SMTPServer="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0002}}"
              SendMailTask:From="{sender}" SendMailTask:To="{recipient}" SendMailTask:Subject="x"
              SendMailTask:MessageSource="x"
              xmlns:SendMailTask="www.microsoft.com/sqlserver/dts/tasks/sendmailtask" />
          </DTS:ObjectData>
        </DTS:Executable>
      </DTS:Executables>
      <DTS:ForEachVariableMappings>
        <DTS:ForEachVariableMapping DTS:CreationName=""
          DTS:DTSID="{{0B6C3E52-3C55-4B8E-9E38-6E1B2F6A0007}}" DTS:ObjectName="m0"
          DTS:ValueIndex="0"
          DTS:VariableName="User::FileName" />
      </DTS:ForEachVariableMappings>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""


def _dtsx_run(sink: Sink, folder: Path, ca_pem: Path, work: Path) -> float:
    import dtsx.connections.smtp
    import dtsx.tasks.send_mail  # noqa: F401
    from dtsx.engine.executor import run
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    tls = "EnableSsl=True;CaFile=" + str(ca_pem) if sink.tls else "EnableSsl=False"
    conn = f"SmtpServer={HOST};Port={sink.port};UseWindowsAuthentication=False;{tls};Timeout=30000;"
    path = work / ("bench-tls.dtsx" if sink.tls else "bench-plain.dtsx")
    path.write_text(
        _PACKAGE.format(conn=conn, folder=folder, sender=SENDER, recipient=RECIPIENT),
        encoding="utf-8",
    )
    plan = build(load(path))
    start = time.perf_counter()
    result = run(plan)
    elapsed = time.perf_counter() - start
    if result.result != "Success":
        failed = [(e.ref_id, e.errors[:1]) for e in result.executables if e.result != "Success"]
        raise SystemExit(f"the dtsx run failed: {failed}")
    return elapsed


def _timed(label: str, sink: Sink, n: int, once: Callable[[], float]) -> float:
    before = sink.count
    elapsed = once()
    delivered = sink.count - before
    if delivered != n:
        raise SystemExit(f"{label}: the sink received {delivered} messages, expected {n}")
    return n / elapsed


def _tls_material(work: Path) -> tuple[str, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    chain = work / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    ca_pem = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return str(chain), ca_pem


_LABELS = {
    "dtsx": "dtsx Foreach Loop + Send Mail",
    "raw": "raw smtplib, one connection",
    "each": "raw smtplib, connect per message (SSIS)",
}


@dataclass(frozen=True)
class Mode:
    label: str
    tls: bool
    pipelining: bool  # whether the sink offers PIPELINING


MODES = [
    Mode("plain", tls=False, pipelining=False),
    Mode("STARTTLS", tls=True, pipelining=False),
    Mode("STARTTLS, sink offers PIPELINING", tls=True, pipelining=True),
]


def _bench_mode(
    mode: Mode, n: int, reps: int, work: Path, folder: Path, material: Any
) -> dict[str, float]:
    chain, ca_pem = material
    sink = _start_sink(chain if mode.tls else None, mode.pipelining)
    messages = [_message(i) for i in range(n)]
    runs: dict[str, Callable[[], float]] = {
        "dtsx": lambda: _dtsx_run(sink, folder, ca_pem, work),
        "raw": lambda: _raw_one_connection(sink, messages, ca_pem),
        "each": lambda: _raw_connect_each(sink, messages, ca_pem),
    }
    rates: dict[str, list[float]] = {key: [] for key in runs}
    try:
        print(f"{mode.label} (sink process on port {sink.port}), {n} messages, {reps} repetitions:")
        # One untimed round first: the sink process, its TLS state and the client's caches start
        # cold, which would otherwise count against whichever contender happens to run first.
        for key, once in runs.items():
            _timed(_LABELS[key], sink, n, once)
        # Interleaved, so that a change in machine load touches every contender alike.
        for _ in range(reps):
            for key, once in runs.items():
                rates[key].append(_timed(_LABELS[key], sink, n, once))
    finally:
        sink.stop()
    medians = {key: statistics.median(values) for key, values in rates.items()}
    for key, values in rates.items():
        shown = ", ".join(f"{r:,.0f}" for r in values)
        print(f"  {_LABELS[key]:<42} {medians[key]:>9,.0f} msg/s   (runs: {shown})")
    # Ratios within each repetition (the contenders ran back to back), then their median.
    pairs = zip(rates["dtsx"], rates["raw"], strict=True)
    medians["dtsx/raw"] = statistics.median(d / r for d, r in pairs)
    pairs = zip(rates["dtsx"], rates["each"], strict=True)
    medians["dtsx/each"] = statistics.median(d / e for d, e in pairs)
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="messages per run (default 1000)")
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions per measurement (default 3)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dtsx-bench-smtp-") as tmp:
        work = Path(tmp)
        folder = work / "items"
        folder.mkdir()
        for i in range(args.n):
            (folder / f"file{i:05d}.txt").write_bytes(b"")
        material = _tls_material(work)
        results = {
            mode: _bench_mode(mode, args.n, args.reps, work, folder, material) for mode in MODES
        }
    print("ratios (median of the per-repetition ratios):")
    for mode, r in results.items():
        print(
            f"  {mode.label:<33} dtsx / raw one connection = {r['dtsx/raw']:.2f}  (target >= 0.50)"
            f"   dtsx / connect per message = {r['dtsx/each']:.2f}"
            + ("  (target >= 3.00)" if mode.tls else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
