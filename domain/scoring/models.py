from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Subquery, UniqueConstraint, func, select
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class RiskLevel(StrEnum):
    low = "Low"
    medium = "Medium"
    high = "High"
    critical = "Critical"


class ChurnPrediction(SQLModel, table=True):
    """One row per tutor and UTC day (the daily history H1's "for 7+ days" needs); updated in place."""

    __tablename__ = "churn_predictions"
    __table_args__ = (UniqueConstraint("tutor_id", "prediction_date", name="uq_prediction_tutor_day"),)

    prediction_id: int | None = Field(default=None, primary_key=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    prediction_date: date = Field(index=True)
    as_of: datetime = Field(sa_type=UTCDateTime)
    churn_score: float
    risk_level: str = Field(max_length=10, index=True)
    window_1day_probability: float | None = None
    window_7day_probability: float | None = None
    window_30day_probability: float | None = None
    window_90day_probability: float | None = None
    # Each component's 0-100 score and its weighted contribution, so a score can be explained.
    contributing_factors: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The facts the intervention rules read at this evaluation: the rules dry run replays them.
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    # The ML churn model's score of this day (as of 00:00 UTC), beside the rule score above: the window_*
    # probabilities hold its four horizons. Written by domain/model_scoring; re-evaluations leave them alone.
    model_churn_score: float | None = None
    model_risk_level: str | None = Field(default=None, max_length=10)
    model_factors: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    ml_model_version: str | None = Field(default=None, max_length=80)
    model_version: str = Field(max_length=60)
    rules_version: str | None = Field(default=None, max_length=40)
    rules_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def latest_prediction_days(up_to: date | None = None) -> Subquery:
    """(tutor_id, day): each tutor's latest prediction day, on or before ``up_to`` when given; join it back to
    churn_predictions for the row itself."""
    p = ChurnPrediction
    stmt = select(p.tutor_id, func.max(p.prediction_date).label("day"))
    if up_to is not None:
        stmt = stmt.where(p.prediction_date <= up_to)
    return stmt.group_by(p.tutor_id).subquery()
