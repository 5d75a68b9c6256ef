from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.crypto import EncryptedString
from core.types import UTCDateTime, utcnow


class InterventionStatus(StrEnum):
    needs_approval = "needs_approval"  # a manager approves before anyone works it (rule: requires_approval)
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


OPEN = (InterventionStatus.needs_approval, InterventionStatus.pending, InterventionStatus.in_progress)


class Outcome(StrEnum):
    improved = "improved"
    no_change = "no_change"
    declined = "declined"
    churned = "churned"


class Intervention(SQLModel, table=True):
    __tablename__ = "interventions"

    # The business key and the Temporal workflow id: intervention-<tutor>-<type>-<window or session>[-<step>].
    intervention_id: str = Field(primary_key=True, max_length=200)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    intervention_type: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=12)  # automated | human | program
    # What this row is within its case: the task itself, a program's kickoff/check-in/review, an A4 escalation.
    step: str = Field(default="task", max_length=20)
    parent_id: str | None = Field(default=None, max_length=200, index=True)
    title: str = Field(default="", max_length=120)
    trigger_reason: str = Field(max_length=500)
    recommended_date: datetime = Field(sa_type=UTCDateTime)
    # The tutor's risk when the rules recommended this: effectiveness is reported per type and risk level.
    risk_level: str | None = Field(default=None, max_length=10)
    churn_score: float | None = None
    owner_role: str | None = Field(default=None, max_length=20)
    assigned_to: str | None = Field(default=None, max_length=64)
    requires_approval: bool = False
    approved_by: str | None = Field(default=None, max_length=64)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # time to action starts here
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Automated cases: the tutor's response to the message, and the follow-up's result (A2 training, A4 pattern).
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    follow_up_result: str | None = Field(default=None, max_length=200)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # programs: the end of H2/H3
    status: str = Field(default=InterventionStatus.pending.value, max_length=16, index=True)
    due_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_to_role: str | None = Field(default=None, max_length=20)
    completed_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=16)
    notes: str | None = Field(default=None, max_length=4000)
    rules_version: str = Field(max_length=40)
    rules_hash: str = Field(max_length=64)
    matched_rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    revision: int = 0  # the workflow's state revision last written; older snapshots never overwrite newer
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxStatus(StrEnum):
    queued = "queued"  # written; an email waits for the delivery activity
    sending = "sending"  # handed to SMTP; a crash here resends with the same Message-ID, so receivers can dedupe
    sent = "sent"
    failed = "failed"


class OutboxMessage(SQLModel, table=True):
    """Messages to tutors and staff; keyed by intervention id + step + channel so a retried activity never
    writes or sends twice. An in_app row is the notification itself; an email row is sent over SMTP."""

    __tablename__ = "outbox"

    message_id: str = Field(primary_key=True, max_length=260)
    # None for a message that belongs to no case: a student's feedback reminder (domain.feedback.reminders).
    intervention_id: str | None = Field(default=None, foreign_key="interventions.intervention_id", max_length=200,
                                        index=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    channel: str = Field(max_length=16)  # in_app | email
    # Staff notifications (reminders, escalations) go to a role or a user instead of the tutor.
    recipient_role: str | None = Field(default=None, max_length=20)
    # An email address or a user id; encrypted at rest like every other address (core.crypto).
    recipient: str | None = Field(default=None, sa_column=Column(EncryptedString(254), nullable=True))
    # Encrypted at rest (migration 0014): a message names the tutor, a feedback reminder carries its link.
    subject: str = Field(sa_column=Column(EncryptedString(200), nullable=False))
    body: str = Field(sa_column=Column(EncryptedString(4000), nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.queued.value, max_length=10, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    response: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InterventionEvent(SQLModel, table=True):
    """Every change to a case, in order: who did what when (the audit trail of the queue)."""

    __tablename__ = "intervention_events"
    __table_args__ = (UniqueConstraint("intervention_id", "revision", "event", name="uq_intervention_event"),)

    event_id: int | None = Field(default=None, primary_key=True)
    intervention_id: str = Field(foreign_key="interventions.intervention_id", max_length=200, index=True)
    revision: int
    event: str = Field(max_length=24)
    actor: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UTCDateTime)
