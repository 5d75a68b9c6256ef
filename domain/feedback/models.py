from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class StudentFeedback(SQLModel, table=True):
    __tablename__ = "student_feedback"

    feedback_id: str = Field(primary_key=True, max_length=64)
    session_id: str = Field(foreign_key="sessions.session_id", max_length=64, unique=True)
    student_id: str = Field(foreign_key="students.student_id", max_length=64)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    overall_rating: int
    is_first_session: bool = False
    subject_knowledge_rating: int | None = None
    communication_rating: int | None = None
    patience_rating: int | None = None
    engagement_rating: int | None = None
    helpfulness_rating: int | None = None
    would_recommend: bool | None = None
    improvement_areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    free_text_feedback: str | None = Field(default=None, max_length=500)
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    # Indexed: the live pages' change token reads the newest feedback every second (domain/dashboard/changes.py).
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


Rating = int


class DimensionRatings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_knowledge: int | None = Field(default=None, ge=1, le=5)
    communication: int | None = Field(default=None, ge=1, le=5)
    patience: int | None = Field(default=None, ge=1, le=5)
    engagement: int | None = Field(default=None, ge=1, le=5)
    helpfulness: int | None = Field(default=None, ge=1, le=5)


class FeedbackIn(BaseModel):
    """The PRD §1.5 feedback shape, as posted to /api/v1/feedback."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    feedback_id: str = Field(min_length=1, max_length=64)
    session_id: str = Field(min_length=1, max_length=64)
    student_id: str = Field(min_length=1, max_length=64)
    tutor_id: str = Field(min_length=1, max_length=64)
    overall_rating: int = Field(ge=1, le=5)
    first_session: bool = False
    ratings: DimensionRatings = Field(default_factory=DimensionRatings)
    would_recommend: bool | None = None
    improvement_areas: list[str] = Field(default_factory=list, max_length=10)
    free_text_feedback: str | None = Field(default=None, max_length=500)
    timestamp: AwareDatetime
