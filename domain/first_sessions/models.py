"""Upcoming first sessions scored by the first-session model, and the pre-session alerts they raise."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, computed_field
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class AlertStatus(StrEnum):
    below_threshold = "below_threshold"  # scored, no alert: kept so a repeated booking gets the same answer
    open = "open"  # at or above the rules' threshold: staff should look before the session
    acknowledged = "acknowledged"  # a staff member has seen it


class FirstSessionAlert(SQLModel, table=True):
    """One row per booking scored (id = the booking id); an alert when status is open or acknowledged."""

    __tablename__ = "first_session_alerts"
    __table_args__ = (Index("ix_first_session_alerts_status_start", "status", "scheduled_start"),)

    alert_id: str = Field(primary_key=True, max_length=64)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    student_id: str = Field(foreign_key="students.student_id", max_length=64)
    subject: str = Field(max_length=80)
    scheduled_start: datetime = Field(sa_type=UTCDateTime)
    probability: float  # P(first session rated below the rules' poor rating)
    threshold: float  # the rules' alert threshold when it was scored
    factors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_version: str = Field(max_length=80)
    rules_version: str = Field(max_length=40)
    rules_hash: str = Field(max_length=64)
    status: str = Field(max_length=16)
    reminder_id: str | None = Field(default=None, max_length=200)  # the tutor's prep reminder (an intervention id)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BookingIn(BaseModel):
    """An upcoming first session, as a booking system posts it before it happens."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    booking_id: str = Field(min_length=1, max_length=64)
    tutor_id: str = Field(min_length=1, max_length=64)
    student_id: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=1, max_length=80)
    scheduled_start: AwareDatetime


class Factor(BaseModel):
    feature: str
    value: float | str | None
    contribution: float
    text: str


def summary(probability: float, alerting: bool, reminder_id: str | None) -> str:
    """The PRD's staff-facing sentence ("This first session has 60% risk of poor rating...")."""
    text = f"This first session has {probability:.0%} risk of a poor rating."
    if not alerting:
        return text + " Below the alert threshold."
    return text + (" A prep reminder was sent to the tutor." if reminder_id else " Consider sending a prep reminder.")


class RiskResult(BaseModel):
    id: str
    status: Literal["created", "existing"]
    alert: bool
    alert_status: str
    probability: float
    threshold: float
    model_version: str
    rules_version: str
    factors: list[Factor]
    reminder_id: str | None
    summary: str


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    alert_id: str
    tutor_id: str
    student_id: str
    subject: str
    scheduled_start: datetime
    probability: float
    threshold: float
    factors: list[Factor]
    model_version: str
    rules_version: str
    status: str
    reminder_id: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> str:
        return summary(self.probability, self.status != AlertStatus.below_threshold, self.reminder_id)


class AlertPage(BaseModel):
    items: list[AlertRead]
    total: int
    limit: int
    offset: int
