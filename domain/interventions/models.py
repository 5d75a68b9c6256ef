from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class InterventionStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


class Outcome(StrEnum):
    improved = "improved"
    no_change = "no_change"
    declined = "declined"
    churned = "churned"


class Intervention(SQLModel, table=True):
    __tablename__ = "interventions"

    # The business key and the Temporal workflow id: intervention-<tutor>-<type>-<window>.
    intervention_id: str = Field(primary_key=True, max_length=160)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    intervention_type: str = Field(max_length=40)
    kind: str = Field(max_length=12)  # automated | human
    title: str = Field(default="", max_length=120)
    trigger_reason: str = Field(max_length=500)
    recommended_date: datetime = Field(sa_type=UTCDateTime)
    owner_role: str | None = Field(default=None, max_length=20)
    assigned_to: str | None = Field(default=None, max_length=64)
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
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """Messages to tutors; keyed by intervention id + step so a retried activity never sends twice."""

    __tablename__ = "outbox"

    message_id: str = Field(primary_key=True, max_length=200)
    intervention_id: str = Field(foreign_key="interventions.intervention_id", max_length=160, index=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64)
    channel: str = Field(max_length=16)  # in_app | email
    subject: str = Field(max_length=200)
    body: str = Field(max_length=4000)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CompleteTask(BaseModel):
    outcome: Outcome
    notes: str | None = Field(default=None, max_length=4000)
    completed_by: str | None = Field(default=None, max_length=64)
