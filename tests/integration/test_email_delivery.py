"""Email delivery of outbox rows over real SMTP (the aiosmtpd sink on an ephemeral port), SQLite and PostgreSQL."""
from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from core.config import Settings
from core.db import session_scope
from domain.interventions.models import Intervention, OutboxMessage
from domain.notifications import delivery
from domain.notifications.delivery import DeliveryDeferred, PermanentDeliveryError, deliver_email, smtp_message_id
from domain.notifications.sink import MailSink, SinkController, mail_files, read_mail, start_mail_sink
from domain.users.models import User
from tests.factories import NOW, seed_people

INTERVENTION = "intervention-tutor_1-A1-2026-11-20"


class RejectingSink(MailSink):
    """Refuses recipients at bounce.test for good (550), as a server does for an unknown mailbox."""

    def __init__(self, mail_dir: Path):
        super().__init__(mail_dir)
        self.rcpt_calls = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        self.rcpt_calls += 1
        if address.endswith("@bounce.test"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class BusySink(MailSink):
    """Answers the end of DATA with a temporary failure: the message is not taken."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "451 4.3.0 Mail server temporarily busy, try again later"


class ReplyLostSink(MailSink):
    """Stores the message, then drops the connection before its 250 reaches the client (the crash window)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await super().handle_DATA(server, session, envelope)
        server.transport.abort()
        return "250 OK"


def run_sink(handler: MailSink) -> SinkController:
    controller = SinkController(handler, hostname="127.0.0.1", port=0, server_hostname="test-sink")
    controller.start()
    return controller


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SinkController]:
    controller = start_mail_sink(tmp_path / "mail", port=0)
    yield controller
    controller.stop()


def pointed_at(settings: Settings, controller: SinkController) -> Settings:
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                                       "mail_dir": controller.handler.mail_dir, "smtp_timeout_seconds": 5})


@pytest.fixture
def outbox(engine: Engine) -> Callable[..., str]:
    """Tutors, one A1 intervention, and a factory for its queued email rows (returns the message id)."""
    seed_people(engine)
    with session_scope(engine) as db:
        db.add(Intervention(intervention_id=INTERVENTION, tutor_id="tutor_1", intervention_type="A1",
                            kind="automated", trigger_reason="engagement declined", recommended_date=NOW,
                            rules_version="v1", rules_hash="0" * 64, created_at=NOW, updated_at=NOW))

    def add(step: str = "message", **fields: Any) -> str:
        message_id = f"{INTERVENTION}:{step}:email"
        row = dict(message_id=message_id, intervention_id=INTERVENTION, tutor_id="tutor_1", channel="email",
                   subject="A quick check-in about your sessions", body="Hi Tutor 1,\nhow are things going?",
                   created_at=NOW)
        row.update(fields)
        with session_scope(engine) as db:
            db.add(OutboxMessage(**row))
        return message_id

    return add


def row(engine: Engine, message_id: str) -> OutboxMessage:
    with session_scope(engine) as db:
        return db.get(OutboxMessage, message_id)


def activity(engine: Engine, settings: Settings, message_id: str) -> str:
    return ActivityEnvironment().run(NotificationActivities(engine, settings).deliver_email, message_id)


def test_delivery_sends_exactly_once_on_repeat_calls(engine: Engine, settings: Settings, sink: SinkController,
                                                     outbox: Callable[..., str]) -> None:
    message_id = outbox()
    cfg = pointed_at(settings, sink)
    assert activity(engine, cfg, message_id) == "sent"
    sent = row(engine, message_id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 1, None) and sent.sent_at is not None

    again = deliver_email(engine, message_id, cfg)
    assert again.status == "sent" and again.sent_now is False
    assert activity(engine, cfg, message_id) == "sent"
    assert row(engine, message_id).attempts == 1  # nothing was claimed again
    assert read_mail(cfg.mail_dir) == [(smtp_message_id(message_id), "A quick check-in about your sessions",
                                        "t1@example.test")]
    raw = mail_files(cfg.mail_dir)[0].read_text()
    assert f"X-TutorPulse-Outbox: {message_id}" in raw and "Delivered-To: t1@example.test" in raw
    assert "From: TutorPulse <noreply@tutorpulse.local>" in raw and "Return-Path: <noreply@tutorpulse.local>" in raw


def test_crash_between_acceptance_and_commit_resends_with_the_same_message_id(
        engine: Engine, settings: Settings, sink: SinkController, outbox: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    message_id = outbox()
    cfg = pointed_at(settings, sink)

    def killed(*_args: Any, **_kwargs: Any) -> None:
        raise SystemExit("worker killed after the server accepted the message")

    monkeypatch.setattr(delivery, "_mark_sent", killed)
    with pytest.raises(SystemExit):
        deliver_email(engine, message_id, cfg)
    monkeypatch.undo()
    assert (row(engine, message_id).status, row(engine, message_id).attempts) == ("sending", 1)
    assert len(read_mail(cfg.mail_dir)) == 1

    result = deliver_email(engine, message_id, cfg)  # the activity's retry after the restart
    assert (result.status, result.attempts, result.sent_now) == ("sent", 2, True)
    mails = read_mail(cfg.mail_dir)
    assert len(mails) == 2 and mails[0] == mails[1]  # delivered twice, but one Message-ID: receivers dedupe
    assert mails[0].message_id == result.smtp_message_id == smtp_message_id(message_id)
    assert deliver_email(engine, message_id, cfg).sent_now is False
    assert len(mail_files(cfg.mail_dir)) == 2


def test_crash_before_the_data_sends_once(engine: Engine, settings: Settings, sink: SinkController,
                                          outbox: Callable[..., str]) -> None:
    # Killed after the `sending` commit but before the server had the message: the retry is the only copy.
    message_id = outbox(status="sending", attempts=1)
    cfg = pointed_at(settings, sink)
    assert activity(engine, cfg, message_id) == "sent"
    assert row(engine, message_id).attempts == 2
    assert [m.message_id for m in read_mail(cfg.mail_dir)] == [smtp_message_id(message_id)]


def test_lost_reply_after_data_leaves_the_row_sending_and_the_retry_reuses_the_message_id(
        engine: Engine, settings: Settings, tmp_path: Path, sink: SinkController, outbox: Callable[..., str]) -> None:
    message_id = outbox()
    lossy = run_sink(ReplyLostSink(tmp_path / "mail"))  # same directory as `sink`: one mailbox, two servers
    try:
        with pytest.raises(DeliveryDeferred):
            deliver_email(engine, message_id, pointed_at(settings, lossy))
    finally:
        lossy.stop()
    stuck = row(engine, message_id)
    assert (stuck.status, stuck.attempts) == ("sending", 1)  # the outcome is unknown, so not back to queued
    assert "SMTPServerDisconnected" in stuck.last_error
    assert activity(engine, pointed_at(settings, sink), message_id) == "sent"
    assert {m.message_id for m in read_mail(tmp_path / "mail")} == {smtp_message_id(message_id)}
    assert len(mail_files(tmp_path / "mail")) == 2


def test_permanent_rejection_marks_failed_and_is_non_retryable(engine: Engine, settings: Settings, tmp_path: Path,
                                                               outbox: Callable[..., str]) -> None:
    handler = RejectingSink(tmp_path / "mail")
    controller = run_sink(handler)
    try:
        cfg = pointed_at(settings, controller)
        message_id = outbox(recipient="nobody@bounce.test")
        with pytest.raises(ApplicationError) as raised:
            activity(engine, cfg, message_id)
        assert raised.value.non_retryable and raised.value.type == "PermanentDeliveryError"
        failed = row(engine, message_id)
        assert (failed.status, failed.attempts, failed.sent_at) == ("failed", 1, None)
        assert "550 5.1.1" in failed.last_error and "nobody@bounce.test" in failed.last_error

        calls = handler.rcpt_calls
        with pytest.raises(PermanentDeliveryError):
            deliver_email(engine, message_id, cfg)  # a retry by hand: refused again without touching the server
        assert handler.rcpt_calls == calls and row(engine, message_id).attempts == 1

        unknown_user = outbox(step="reminder", recipient="user_does_not_exist")
        with pytest.raises(ApplicationError) as raised:
            activity(engine, cfg, unknown_user)
        assert raised.value.non_retryable and handler.rcpt_calls == calls
        assert row(engine, unknown_user).status == "failed"

        in_app = outbox(step="note", channel="in_app", status="sent")  # in-app rows are not mail
        for wrong in (in_app, "no-such-message"):
            with pytest.raises(PermanentDeliveryError):
                deliver_email(engine, wrong, cfg)
        assert row(engine, in_app).attempts == 0
        assert handler.rcpt_calls == calls and mail_files(tmp_path / "mail") == []
    finally:
        controller.stop()


@pytest.fixture
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A server address that fails the way request.param says, as (kind, port)."""
    if request.param == "busy":
        controller = run_sink(BusySink(tmp_path / "busy"))
        yield request.param, controller.port
        controller.stop()
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        if request.param == "silent":
            sock.listen(1)  # the kernel completes the handshake, nobody ever sends a greeting
        yield request.param, sock.getsockname()[1]


@pytest.mark.parametrize("unreachable", ["refused", "silent", "busy"], indirect=True)
def test_transient_failures_are_retryable_and_count_attempts(engine: Engine, settings: Settings,
                                                            sink: SinkController, outbox: Callable[..., str],
                                                            unreachable: tuple[str, int]) -> None:
    kind, port = unreachable
    message_id = outbox()
    down = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_seconds": 0.5})
    for attempt in (1, 2):
        with pytest.raises(DeliveryDeferred) as raised:  # not an ApplicationError: Temporal retries it
            activity(engine, down, message_id)
        assert not isinstance(raised.value, ApplicationError)
        state = row(engine, message_id)
        # The server certainly does not hold the message in any of these cases, so the row is queued again.
        assert (state.status, state.attempts, state.sent_at) == ("queued", attempt, None)
    expected = {"refused": "ConnectionRefusedError", "silent": "timed out", "busy": "SMTPDataError: 451"}[kind]
    assert expected in state.last_error

    assert activity(engine, pointed_at(settings, sink), message_id) == "sent"  # the server is back
    assert row(engine, message_id).attempts == 3 and len(read_mail(sink.handler.mail_dir)) == 1


def test_sink_writes_one_file_per_delivery_that_the_helper_reads_back(
        engine: Engine, settings: Settings, sink: SinkController, outbox: Callable[..., str]) -> None:
    cfg = pointed_at(settings, sink)
    with session_scope(engine) as db:
        db.add(User(user_id="ops_1", email="ops1@example.test", name="Ops One", role="people_ops"))
        db.add(User(user_id="ops_2", email="ops2@example.test", name="Ops Two", role="people_ops"))
        db.add(User(user_id="ops_3", email="gone@example.test", name="Gone", role="people_ops", is_active=False))
    to_tutor = outbox(subject="Ünïcode résumé of your week", body="Grüße — 你好\n" + "long line " * 60)
    to_address = outbox(step="copy", recipient="lead@example.test", subject="Copy for the lead")
    to_user = outbox(step="reminder", recipient="ops_2", subject="Reminder: task due")
    to_role = outbox(step="escalation", recipient_role="people_ops", subject="Escalated:\r\nsession\ndrops")
    for message_id in (to_tutor, to_address, to_user, to_role):
        assert deliver_email(engine, message_id, cfg).status == "sent"

    # Outside the outbox as well: every DATA is stored, even an identical one.
    raw = b"Message-ID: <same@x>\r\nSubject: twice\r\nTo: a@example.test\r\n\r\nbody\r\n"
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
        client.sendmail("x@example.test", ["a@example.test"], raw)
        client.sendmail("x@example.test", ["a@example.test"], raw)

    assert read_mail(cfg.mail_dir) == [
        (smtp_message_id(to_tutor), "Ünïcode résumé of your week", "t1@example.test"),
        (smtp_message_id(to_address), "Copy for the lead", "lead@example.test"),
        (smtp_message_id(to_user), "Reminder: task due", "ops2@example.test"),
        (smtp_message_id(to_role), "Escalated: session drops", "ops1@example.test, ops2@example.test"),
        ("<same@x>", "twice", "a@example.test"),
        ("<same@x>", "twice", "a@example.test"),
    ]
    files = mail_files(cfg.mail_dir)
    assert len({f.name for f in files}) == 6 and not list(cfg.mail_dir.glob(".*.tmp"))
    # 7bit on the wire (no 8BITMIME needed), and the body survives the round trip.
    first = message_from_bytes(files[0].read_bytes(), policy=default)
    assert first["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert first.get_content().replace("\r\n", "\n").startswith("Grüße — 你好\nlong line long line")
    assert all(len(line) <= 998 for line in files[0].read_bytes().split(b"\r\n"))


def test_message_id_keeps_distinct_outbox_keys_distinct() -> None:
    ids = ["a:b", "a.b", "a=3Ab", "a b", "a:b:email"]
    headers = [smtp_message_id(i) for i in ids]
    assert len(set(headers)) == len(ids)
    assert smtp_message_id("intervention-t_1-A1-2026-11-20:message:email") == \
        "<intervention-t_1-A1-2026-11-20=3Amessage=3Aemail@tutorpulse>"
