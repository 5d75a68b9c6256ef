from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class TutorPerformanceMetric(SQLModel, table=True):
    """One row per tutor, window and UTC day; re-evaluations during the day update it in place."""

    __tablename__ = "tutor_performance_metrics"
    __table_args__ = (UniqueConstraint("tutor_id", "window", "calculation_date", name="uq_metric_tutor_window_day"),)

    metric_id: int | None = Field(default=None, primary_key=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    calculation_date: date
    window: str = Field(max_length=8)  # 7day | 30day | 90day
    as_of: datetime = Field(sa_type=UTCDateTime)
    sessions_scheduled: int = 0
    sessions_completed: int = 0
    avg_rating: float | None = None
    first_session_count: int = 0
    first_session_success_rate: float | None = None
    reschedule_rate: float | None = None
    no_show_count: int = 0
    no_show_rate: float | None = None
    engagement_score: float | None = None
    learning_objectives_met_pct: float | None = None
    response_time_avg_minutes: float | None = None
    performance_tier: str | None = Field(default=None, max_length=20)
    rules_version: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
