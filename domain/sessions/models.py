from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator
from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class TutoringSession(SQLModel, table=True):
    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_tutor_start", "tutor_id", "scheduled_start"),
        Index("ix_sessions_pending", "evaluated_at", "created_at"),
        Index("ix_sessions_pair", "tutor_id", "student_id"),
        Index("ix_sessions_start", "scheduled_start", "no_show"),  # Home's KPI windows (migration 0013)
        Index("ix_sessions_first_start", "scheduled_start", sqlite_where=text("session_number = 1"),
              postgresql_where=text("session_number = 1")),
    )

    session_id: str = Field(primary_key=True, max_length=64)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64)
    student_id: str = Field(foreign_key="students.student_id", max_length=64, index=True)
    session_number: int
    scheduled_start: datetime = Field(sa_type=UTCDateTime)
    actual_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration_minutes: int
    subject: str = Field(max_length=80)
    session_type: str = Field(default="1-on-1", max_length=16)
    tutor_initiated_reschedule: bool = False
    no_show: bool = False
    late_start_minutes: int = 0
    engagement_score: float | None = None
    # The PRD's session feed carries a quick rating; detailed feedback lives in student_feedback.
    student_rating: float | None = None
    student_feedback_text: str | None = Field(default=None, max_length=2000)
    learning_objectives_met: bool | None = None
    technical_issues: bool = False
    # Set by the tutor workflow's evaluation; NULL means "ingested, not yet evaluated" (the sweep's work list).
    evaluated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SessionIn(BaseModel):
    """The PRD §1.2 session shape, as posted to /api/v1/sessions."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    session_id: str = Field(min_length=1, max_length=64)
    tutor_id: str = Field(min_length=1, max_length=64)
    student_id: str = Field(min_length=1, max_length=64)
    session_number: int = Field(ge=1)
    scheduled_start: AwareDatetime
    actual_start: AwareDatetime | None = None
    duration_minutes: int = Field(ge=0, le=600)
    subject: str = Field(min_length=1, max_length=80)
    session_type: Literal["1-on-1", "group"] = "1-on-1"
    tutor_initiated_reschedule: bool = False
    no_show: bool = False
    late_start_minutes: int = Field(default=0, ge=0, le=600)
    engagement_score: float | None = Field(default=None, ge=0, le=1)
    student_rating: float | None = Field(default=None, ge=1, le=5)
    student_feedback_text: str | None = Field(default=None, max_length=2000)
    learning_objectives_met: bool | None = None
    technical_issues: bool = False

    @model_validator(mode="after")
    def _no_show_has_no_start(self) -> SessionIn:
        if self.no_show and self.actual_start is not None:
            raise ValueError("actual_start must be empty when no_show is true")
        return self


class IngestResult(BaseModel):
    id: str
    status: Literal["created", "existing"]
