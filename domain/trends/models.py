from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class WeeklyTrend(SQLModel, table=True):
    """PRD "Weekly trends: 7-day moving averages": one row per tutor and week, with the week before for contrast."""

    __tablename__ = "tutor_weekly_trends"
    __table_args__ = (UniqueConstraint("tutor_id", "week_ending", name="uq_weekly_trend_tutor_week"),)

    trend_id: int | None = Field(default=None, primary_key=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    week_ending: date = Field(index=True)  # exclusive: the week is the 7 days before this date, midnight UTC
    # {metric: {"current": x, "previous": y, "change": x - y}}; values are 7-day averages (per day for counts)
    moving_averages: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rules_version: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
