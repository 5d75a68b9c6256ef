from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class TutorEvent(SQLModel, table=True):
    __tablename__ = "tutor_events"
    __table_args__ = (Index("ix_tutor_events_tutor_time", "tutor_id", "event_timestamp"),)

    event_id: str = Field(primary_key=True, max_length=64)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64)
    event_type: str = Field(max_length=40)
    event_timestamp: datetime = Field(sa_type=UTCDateTime)
    # "metadata" is reserved by SQLAlchemy's declarative base, hence the attribute name.
    event_metadata: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
