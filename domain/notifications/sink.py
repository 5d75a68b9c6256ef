"""A local SMTP server that keeps every message it receives: the demo's and the tests' mail server.

Each accepted DATA becomes its own file in the mail directory, named by arrival time and a counter, so a
message delivered twice shows up as two files (with the same Message-ID) instead of overwriting itself.
Files are the raw message as received, preceded by Return-Path and Delivered-To lines as a local mail
delivery agent writes them, so the envelope is visible too.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import threading
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller

from core.config import Settings

log = logging.getLogger(__name__)

SUFFIX = ".eml"


class ReceivedMail(NamedTuple):
    message_id: str
    subject: str
    to: str


class MailSink:
    """aiosmtpd handler: accepts every sender and recipient and stores the message."""

    def __init__(self, mail_dir: Path):
        self.mail_dir = Path(mail_dir)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: ANN401, N802 - aiosmtpd hook
        n = next(self._counter)  # taken on the event loop thread, so unique and in arrival order
        path = await asyncio.to_thread(self._store, n, envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.original_content)
        log.info("mail from %s to %s stored as %s", envelope.mail_from, ", ".join(envelope.rcpt_tos), path.name)
        return "250 2.0.0 Message accepted for delivery"

    def _store(self, n: int, mail_from: str, rcpt_tos: list[str], raw: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        # The pid keeps two sinks sharing a directory (a restarted one, say) from reusing a name.
        name = f"{stamp}-{os.getpid()}-{n:06d}{SUFFIX}"
        envelope = f"Return-Path: <{mail_from}>\r\n" + "".join(f"Delivered-To: {r}\r\n" for r in rcpt_tos)
        tmp = self.mail_dir / f".{name}.tmp"
        tmp.write_bytes(envelope.encode() + raw)
        os.replace(tmp, self.mail_dir / name)  # readers never see a half-written message
        return self.mail_dir / name


class SinkController(Controller):
    """aiosmtpd's threaded Controller, plus port 0: bind an ephemeral port and report it in `.port`."""

    def _create_server(self):  # noqa: ANN202 - returns the awaitable the base class runs
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=self.port,
                                                   ssl=self.ssl_context)
            # The base class connects to (hostname, port) next to check the server answers: give it the real port.
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


def start_mail_sink(mail_dir: Path, *, host: str = "127.0.0.1", port: int = 0) -> SinkController:
    """Starts the sink in a background thread and returns its controller (`.port`, `.stop()`)."""
    # aiosmtpd logs every SMTP command at INFO; the stored files (and our one line per message) are the record.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # A fixed server name: aiosmtpd would otherwise resolve the machine's FQDN, which can stall on DNS.
    controller = SinkController(MailSink(mail_dir), hostname=host, port=port, server_hostname="tutorpulse-mailsink")
    controller.start()
    return controller


def run_mail_sink(settings: Settings, *, host: str | None = None, port: int | None = None,
                  mail_dir: Path | None = None, stop: threading.Event | None = None) -> None:
    """Runs the sink in the foreground until `stop` is set, Ctrl-C or SIGTERM (`tutorpulse mailsink`)."""
    mail_dir = Path(mail_dir or settings.mail_dir)
    controller = start_mail_sink(mail_dir, host=host or settings.smtp_host,
                                 port=settings.smtp_port if port is None else port)
    print(f"mail sink on {controller.hostname}:{controller.port}, storing every message in {mail_dir.resolve()}",
          flush=True)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Both signals end the wait the same way, also when started in the background (where a shell makes the
        # child ignore SIGINT) or stopped with a plain `kill`.
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _interrupt)
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def mail_files(mail_dir: Path) -> list[Path]:
    """Every stored message, in arrival order."""
    mail_dir = Path(mail_dir)
    return sorted(mail_dir.glob(f"*{SUFFIX}")) if mail_dir.is_dir() else []


def read_mail(mail_dir: Path) -> list[ReceivedMail]:
    """(Message-ID, Subject, To) of every stored message, in arrival order; duplicates stay duplicates."""
    parser = BytesParser(policy=default_policy)
    out = []
    for path in mail_files(mail_dir):
        with path.open("rb") as fh:
            msg = parser.parse(fh, headersonly=True)
        # A long Message-ID is folded onto its own line, which the parser hands back with the leading space.
        out.append(ReceivedMail(str(msg.get("Message-ID", "")).strip(), str(msg.get("Subject", "")),
                                str(msg.get("To", ""))))
    return out
