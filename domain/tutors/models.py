from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from core.crypto import EncryptedString, hash_default
from core.types import UTCDateTime, utcnow


class TutorStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    churned = "churned"


class Archetype(StrEnum):
    high_performer = "high_performer"
    at_risk = "at_risk"
    new = "new"
    steady = "steady"
    churner = "churner"


class Tutor(SQLModel, table=True):
    """Enum-like columns are plain strings (values of the enums above): portable across SQLite and PostgreSQL."""

    __tablename__ = "tutors"

    tutor_id: str = Field(primary_key=True, max_length=64)
    # PII, encrypted at rest; email_hash (a keyed hash, filled from email on insert) is what lookups compare.
    name: str = Field(sa_column=Column(EncryptedString(200), nullable=False))
    email: str = Field(sa_column=Column(EncryptedString(254), nullable=False))
    email_hash: str | None = Field(default=None, sa_column=Column(
        String(64), index=True, default=hash_default("email")))
    onboarding_date: date
    status: str = Field(default=TutorStatus.active.value, max_length=16, index=True)
    subjects: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    education_level: str | None = Field(default=None, max_length=64)
    location: str | None = Field(default=None, max_length=120)
    baseline_sessions_per_week: float = 15.0
    # Synthetic data only: the archetype the simulation started the tutor in. Never a model feature.
    behavioral_archetype: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
