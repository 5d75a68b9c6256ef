"""The feedback reminder (PRD UI System 3: "Email reminder if no feedback after 24 hours").

One email per session, to the student's own account, through the notification outbox and its SMTP delivery: the
row is keyed by the session, so a retried activity, or a second reminder run for the same session, finds it and
writes nothing. The row belongs to no intervention: a reminder to a student is not a case about the tutor.

The email carries the very link the marketplace was given. A link is determined by its session and expiry, so it is
signed again here from the expiry instead of travelling through the workflow: the token is a credential, and
Temporal keeps workflow histories.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlmodel import Session

from domain.feedback import links
from domain.interventions.models import OutboxMessage, OutboxStatus
from domain.sessions.models import TutoringSession
from domain.users.models import Role, User

PAGE_PATH = "/feedback/{token}"  # the student's form (web.feedback_views)


class Outcome(StrEnum):
    queued = "queued"  # an email row waits for delivery
    already_reminded = "already_reminded"  # this session's reminder went out (or failed for good) before
    feedback_given = "feedback_given"
    link_expired = "link_expired"
    no_recipient = "no_recipient"  # the student has no active account to write to
    session_gone = "session_gone"


@dataclass(frozen=True)
class ReminderOutcome:
    outcome: Outcome
    message_id: str | None = None  # set when an email row waits for delivery


def message_id_for(session_id: str) -> str:
    return f"feedback-reminder-{session_id}:email"


def student_account(db: Session, student_id: str) -> str | None:
    """The user id of the student's active account: the outbox resolves its address at delivery."""
    stmt = (select(User.user_id).where(User.role == Role.student.value, User.student_id == student_id,
                                       User.is_active.is_(True)).order_by(User.user_id).limit(1))
    return db.execute(stmt).scalar_one_or_none()


def link_for(session_id: str, expires_at: datetime) -> str:
    """The token issued for this session with this expiry (links.sign is deterministic in both)."""
    token, expires = links.sign(session_id, now=expires_at - timedelta(days=links.LINK_DAYS), days=links.LINK_DAYS)
    if expires != expires_at:
        raise ValueError(f"{expires_at.isoformat()} is not a link expiry (whole seconds, UTC)")
    return token


def _body(view: links.LinkView, url: str, expires_at: datetime) -> tuple[str, str]:
    tutor = view.tutor_first_name or "your tutor"
    subject = f"How was your {view.subject} session with {tutor}?"
    body = (f"Hi,\n\nYou have not rated your {view.subject} session with {tutor} on "
            f"{view.scheduled_start:%A %d %B} yet. It takes two taps:\n\n{url}\n\n"
            "Your tutor sees ratings but not your name. "
            f"The link works until {expires_at:%d %B %Y}.\n\n"
            "Your feedback helps improve tutoring quality. Thank you!\n")
    return subject, body


def queue_reminder(db: Session, session_id: str, *, link_expires_at: datetime, site_url: str, now: datetime
                   ) -> ReminderOutcome:
    """Writes the session's reminder email to the outbox unless feedback came, or a reminder was written, before."""
    message_id = message_id_for(session_id)
    existing = db.get(OutboxMessage, message_id)
    if existing is not None:
        # Written by an earlier attempt: delivery picks it up again until it is sent or fails for good.
        waiting = existing.status in (OutboxStatus.queued, OutboxStatus.sending)
        return ReminderOutcome(Outcome.queued, message_id) if waiting else ReminderOutcome(Outcome.already_reminded)
    view = links.view(db, session_id)
    held = db.get(TutoringSession, session_id)
    if view is None or held is None:
        return ReminderOutcome(Outcome.session_gone)
    if view.feedback_id is not None:
        return ReminderOutcome(Outcome.feedback_given)
    if link_expires_at <= now:
        return ReminderOutcome(Outcome.link_expired)
    recipient = student_account(db, held.student_id)
    if recipient is None:
        return ReminderOutcome(Outcome.no_recipient)
    url = site_url.rstrip("/") + PAGE_PATH.format(token=link_for(session_id, link_expires_at))
    subject, body = _body(view, url, link_expires_at)
    db.add(OutboxMessage(message_id=message_id, intervention_id=None, tutor_id=view.tutor_id, channel="email",
                         recipient=recipient, subject=subject[:200], body=body[:4000],
                         payload={"kind": "feedback_reminder", "session_id": session_id},
                         status=OutboxStatus.queued.value, created_at=now))
    db.flush()
    return ReminderOutcome(Outcome.queued, message_id)
