from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class TierCutoffs(SQLModel, table=True):
    """Performance-index cut-offs from one review of the population: the percentile boundaries every evaluation
    until the next review maps a tutor's index through (PRD "Monthly reviews: performance tier assignment")."""

    __tablename__ = "tier_cutoffs"

    cutoff_id: int | None = Field(default=None, primary_key=True)
    effective_date: date = Field(index=True)
    reason: str = Field(max_length=24)  # monthly_review | initial
    population: int
    lower_bounds: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    shares: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rules_version: str = Field(max_length=40)
    rules_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TierHistory(SQLModel, table=True):
    """Every tier a tutor has held: one row per monthly review and one whenever an evaluation changes it."""

    __tablename__ = "tier_history"
    __table_args__ = (Index("ix_tier_history_tutor_time", "tutor_id", "assigned_at"),)

    tier_history_id: int | None = Field(default=None, primary_key=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64)
    assigned_at: datetime = Field(sa_type=UTCDateTime)
    tier: str = Field(max_length=20)
    previous_tier: str | None = Field(default=None, max_length=20)
    source: str = Field(max_length=24)  # monthly_review | evaluation
    performance_index: float | None = None
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rules_version: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
