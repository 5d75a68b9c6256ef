from __future__ import annotations

from datetime import date, datetime

from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
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
    # Secondary metrics (PRD §2.2)
    response_time_p95_minutes: float | None = None
    satisfaction_avg: float | None = None
    satisfaction_by_subject: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    satisfaction_by_session_type: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    trainings_completed: int = 0
    pd_completion_rate: float | None = None
    availability_changes_per_week: float = 0.0
    availability_hours_delta: float = 0.0
    technical_issues_per_session: float | None = None
    late_start_rate: float | None = None
    login_count: int = 0
    session_prep_minutes_avg: float | None = None
    engagement_parts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    performance_index: float | None = None
    performance_tier: str | None = Field(default=None, max_length=20)
    rules_version: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
