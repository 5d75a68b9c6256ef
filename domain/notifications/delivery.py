"""Email delivery of outbox messages over SMTP, idempotent on the outbox row.

The intervention activity writes an email row `queued`; `deliver_email` moves it
queued → sending (attempts + 1, committed) → one SMTP transaction → sent (sent_at, committed).

Delivery semantics, by where a crash (kill -9 of the worker, a lost activity) can happen:

- before the `sending` commit: nothing was sent and the row is still `queued`; the retry sends it once.
- after `sending`, before the end of the DATA (the final "."): a server discards an unfinished transaction,
  so nothing was delivered; the retry sends it once.
- between the end of the DATA and the `sent` commit: the server has the message but the row still says
  `sending`, so the retry sends it again. This is the one window where a message reaches the server twice,
  and no client can close it: SMTP has no way to ask a server whether it already holds a message. Every
  copy carries the same Message-ID header (derived from the outbox key) and the same X-TutorPulse-Outbox
  header, so receivers can dedupe: at-least-once to the server, once per Message-ID.
- after the `sent` commit: a retry finds `sent` and returns without contacting the server.

Failures that are not crashes:

- permanent: a 5xx reply to MAIL FROM, RCPT TO or DATA (e.g. 550 unknown recipient), or no address to send
  to. The row becomes `failed` with last_error and `PermanentDeliveryError` is raised; the activity turns it
  into a non-retryable ApplicationError. A later call raises again without contacting the server.
- transient: connection refused or reset, timeouts, a 4xx reply. `DeliveryDeferred` is raised and Temporal
  retries the activity under its retry policy (there is deliberately no retry loop here). The row keeps the
  attempt count and last_error; it goes back to `queued` when the server certainly did not take the message
  and stays `sending` when that is unknown (the connection broke after the DATA went out).
  Authentication and STARTTLS failures count as transient even with a 5xx: they are a fault of the
  deployment, not of the message, and fixing the configuration delivers the message on the next attempt
  instead of leaving it failed.

Attempts of one row are serialised only while claiming it; an attempt that outlives its activity timeout can
overlap the retry and send a second copy (same Message-ID), so smtp_timeout_seconds must stay well under the
activity's start-to-close timeout.
"""
from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import OutboxMessage, OutboxStatus
from domain.tutors.models import Tutor
from domain.users.models import Role, User

# 7bit transfer encoding for every body: a non-ASCII body is quoted-printable, so no server needs 8BITMIME.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")
_MESSAGE_ID_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+")
_ERROR_MAX = 500  # outbox.last_error


class PermanentDeliveryError(Exception):
    """The message cannot be delivered as it is (rejected recipient, no address); retrying will not help."""

    def __init__(self, message_id: str, reason: str):
        super().__init__(f"outbox message {message_id}: {reason}")
        self.message_id = message_id
        self.reason = reason


class DeliveryDeferred(Exception):
    """Delivery failed for a reason that can pass (server down or busy, timeout, 4xx): retry later."""


@dataclass(frozen=True)
class DeliveryResult:
    message_id: str
    status: str  # an OutboxStatus value
    attempts: int
    recipients: tuple[str, ...]
    smtp_message_id: str  # the Message-ID header every copy of this message carries
    sent_now: bool  # False when the row was already sent and this call sent nothing


@dataclass(frozen=True)
class _Claim:
    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    attempts: int


@dataclass
class _Progress:
    # Set just before the DATA command: from then on a broken connection leaves the outcome unknown.
    data_started: bool = False


def smtp_message_id(message_id: str) -> str:
    """The Message-ID header for an outbox key, e.g. `<intervention-t1-A1-2026-11-20=3Amessage=3Aemail@tutorpulse>`.

    The key holds characters a Message-ID may not (":"), so every byte outside a small safe set is written as
    =XX; "=" itself is escaped too, which keeps distinct keys distinct (no two keys share a Message-ID).
    """
    local = "".join(ch if ch in _MESSAGE_ID_SAFE else "".join(f"={b:02X}" for b in ch.encode()) for ch in message_id)
    return f"<{local}@tutorpulse>"


def deliver_email(engine: Engine, message_id: str, settings: Settings, *,
                  clock: Callable[[], datetime] = utcnow) -> DeliveryResult:
    """Sends the outbox email `message_id` unless it is already sent. See the module docstring for semantics."""
    smtp_id = smtp_message_id(message_id)
    claim = _claim(engine, message_id, settings, smtp_id, now=clock())
    if isinstance(claim, DeliveryResult):
        return claim  # already sent

    progress = _Progress()
    try:
        _transmit(settings, claim, progress)
    except (smtplib.SMTPException, OSError) as exc:
        detail = _describe(exc)
        if _is_permanent(exc):
            _record_failure(engine, message_id, OutboxStatus.failed, detail)
            raise PermanentDeliveryError(message_id, detail) from exc
        # Queued again only when the server certainly holds nothing; "sending" marks an unknown outcome.
        certain = not progress.data_started or isinstance(exc, smtplib.SMTPResponseException)
        _record_failure(engine, message_id, OutboxStatus.queued if certain else OutboxStatus.sending, detail)
        raise DeliveryDeferred(f"outbox message {message_id}: {detail}") from exc

    _mark_sent(engine, message_id, now=clock())
    return DeliveryResult(message_id, OutboxStatus.sent.value, claim.attempts, claim.recipients, smtp_id,
                          sent_now=True)


def _claim(engine: Engine, message_id: str, settings: Settings, smtp_id: str, *,
           now: datetime) -> _Claim | DeliveryResult:
    """Marks the row `sending` with one more attempt and commits that before any byte goes to the server."""
    with session_scope(engine) as db:
        row = db.get(OutboxMessage, message_id, with_for_update=True)
        if row is None:
            raise PermanentDeliveryError(message_id, "no such outbox message")
        if row.channel != "email":
            raise PermanentDeliveryError(message_id, f"channel is {row.channel!r}, not 'email'")
        if row.status == OutboxStatus.sent:
            return DeliveryResult(message_id, row.status, row.attempts, (), smtp_id, sent_now=False)
        if row.status == OutboxStatus.failed:
            raise PermanentDeliveryError(message_id, f"failed earlier: {row.last_error}")
        row.status, row.attempts = OutboxStatus.sending.value, row.attempts + 1
        recipients = _recipients(db, row)
        if recipients:
            return _Claim(sender=parseaddr(settings.smtp_from)[1], recipients=tuple(recipients),
                          raw=_compose(row, settings, recipients, smtp_id, now), attempts=row.attempts)
        reason = "no email address for the recipient"
        row.status, row.last_error = OutboxStatus.failed.value, reason
    raise PermanentDeliveryError(message_id, reason)  # after the commit, so the `failed` status is kept


def _recipients(db: Session, row: OutboxMessage) -> list[str]:
    """The row's own recipient (an address, or a user id), else the users holding its role, else the tutor."""
    if row.recipient:
        if "@" in row.recipient:
            return [row.recipient.strip()]
        user = db.get(User, row.recipient)
        return [user.email] if user is not None and user.is_active and user.email else []
    if row.recipient_role and row.recipient_role != Role.tutor:
        # Staff notifications (reminders, escalations) must never fall through to the tutor's address.
        stmt = select(User.email).where(User.role == row.recipient_role, User.is_active.is_(True))
        return sorted(db.execute(stmt).scalars())
    tutor = db.get(Tutor, row.tutor_id)
    return [tutor.email.strip()] if tutor is not None and tutor.email.strip() else []


def _compose(row: OutboxMessage, settings: Settings, recipients: list[str], smtp_id: str, now: datetime) -> bytes:
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = " ".join(row.subject.split())  # a line break in a subject would end the header early
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = smtp_id
    msg["X-TutorPulse-Outbox"] = row.message_id
    if row.intervention_id:  # a feedback reminder to a student belongs to no case
        msg["X-TutorPulse-Intervention"] = row.intervention_id
    msg.set_content(row.body)
    return msg.as_bytes()


def _transmit(settings: Settings, claim: _Claim, progress: _Progress) -> None:
    """One SMTP transaction, command by command (not sendmail) so the caller knows how far it got."""
    smtp = smtplib.SMTP(timeout=settings.smtp_timeout_seconds)
    try:
        smtp.connect(settings.smtp_host, settings.smtp_port)
        smtp.ehlo_or_helo_if_needed()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        code, reply = smtp.mail(claim.sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, claim.sender)
        refused = {}
        for rcpt in claim.recipients:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if refused:
            # One refused recipient aborts the message for all: a row is either sent or not, never half.
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                pass
            raise smtplib.SMTPRecipientsRefused(refused)
        progress.data_started = True
        code, reply = smtp.data(claim.raw)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
    finally:
        # After a 250 to DATA the message is the server's; a failing QUIT must not turn that into an error.
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return 500 <= exc.smtp_code < 600
    return False  # connection and TLS errors, timeouts, authentication, 4xx replies


def _describe(exc: BaseException) -> str:
    def text(reply: bytes | str) -> str:
        return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "; ".join(f"{code} {text(reply)} ({rcpt})" for rcpt, (code, reply) in exc.recipients.items())
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = f"{exc.smtp_code} {text(exc.smtp_error)}"
    else:
        detail = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {detail}"[:_ERROR_MAX]


def _record_failure(engine: Engine, message_id: str, status: OutboxStatus, error: str) -> None:
    with session_scope(engine) as db:
        row = db.get(OutboxMessage, message_id, with_for_update=True)
        # An overlapping attempt may have sent it meanwhile; `sent` is final.
        if row is not None and row.status != OutboxStatus.sent:
            row.status, row.last_error = status.value, error


def _mark_sent(engine: Engine, message_id: str, *, now: datetime) -> None:
    with session_scope(engine) as db:
        row = db.get(OutboxMessage, message_id, with_for_update=True)
        if row is not None and row.status != OutboxStatus.sent:
            row.status, row.sent_at, row.last_error = OutboxStatus.sent.value, now, None
