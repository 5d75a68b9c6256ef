"""Read schemas of /api/v1/tutors. They name every field a client sees, so the OpenAPI document is the contract
and nothing else on a row (students, synthetic-only columns such as the archetype) can slip out."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.scoring.models import RiskLevel
from rules.scoring import TIERS

Window = Literal["7d", "30d", "90d"]
TierName = Literal[TIERS]  # type: ignore[valid-type]


class TutorSummary(BaseModel):
    tutor_id: str
    name: str
    status: str
    subjects: list[str]
    onboarding_date: date
    churn_score: float | None = Field(description="From the latest churn prediction; null if never evaluated")
    risk_level: RiskLevel | None
    prediction_date: date | None
    tier: TierName | None = Field(description="Performance tier computed with the latest prediction")
    performance_index: float | None = Field(description="0-1; null when the tutor had too few sessions to rank")
    model_churn_score: float | None = Field(
        None, description="The ML churn model's 0-100 score on the same prediction; null if the model has not scored it")
    model_risk_level: RiskLevel | None = None


class TutorPage(BaseModel):
    items: list[TutorSummary]
    total: int
    limit: int
    offset: int


class MetricsRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    calculation_date: date
    as_of: datetime
    sessions_scheduled: int
    sessions_completed: int
    avg_rating: float | None
    first_session_count: int
    first_session_success_rate: float | None
    reschedule_rate: float | None
    no_show_count: int
    no_show_rate: float | None
    engagement_score: float | None
    learning_objectives_met_pct: float | None
    response_time_avg_minutes: float | None
    response_time_p95_minutes: float | None
    satisfaction_avg: float | None
    satisfaction_by_subject: dict[str, float | None]
    satisfaction_by_session_type: dict[str, float | None]
    trainings_completed: int
    pd_completion_rate: float | None
    availability_changes_per_week: float
    availability_hours_delta: float
    technical_issues_per_session: float | None
    late_start_rate: float | None
    login_count: int
    session_prep_minutes_avg: float | None
    engagement_parts: dict[str, float | None]
    performance_index: float | None
    performance_tier: str | None
    rules_version: str | None


class MetricsReport(BaseModel):
    tutor_id: str
    window: Window
    latest: MetricsRow | None = Field(description="The newest row of this window, whatever the date filters")
    items: list[MetricsRow] = Field(description="Daily rows within from/to, newest first")
    total: int
    limit: int
    offset: int


class Component(BaseModel):
    name: str
    label: str
    score: float | None = Field(description="0-100")
    weight: float | None
    contribution: float | None = Field(description="weight x score: points of the churn score")


class FlagRead(BaseModel):
    name: str
    triggered_at: datetime | None
    bump: float | None = Field(description="Points the pattern adds to the churn score")
    summary: str | None
    evidence: dict[str, Any] = Field(description="Session ids and counts behind the flag; never student identifiers")


class TierChange(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    assigned_at: datetime
    tier: str
    previous_tier: str | None
    source: str
    performance_index: float | None
    reasons: list[str]
    rules_version: str


class ModelFactor(BaseModel):
    feature: str
    value: float | None = Field(description="The tutor's feature value; null when there was no data")
    contribution: float = Field(description="SHAP contribution to the model's log hazard: > 0 raises the risk")
    text: str = Field(description='In plain words, e.g. "Days since the last session (9) raises the risk"')


class ModelScore(BaseModel):
    """The ML churn model's score of the prediction's day (features as of 00:00 UTC), beside the rule score."""

    ml_model_version: str = Field(description="The registry version that scored it")
    window_1day_probability: float = Field(description="P(churn within 1 day)")
    window_7day_probability: float
    window_30day_probability: float
    window_90day_probability: float
    churn_score: float = Field(description="0-100: 100 x the horizon-weighted sum of the probabilities (rules file)")
    risk_level: RiskLevel
    factors: list[ModelFactor] = Field(description="The top 3 factors, largest contribution first")


class ScoreReport(BaseModel):
    tutor_id: str
    prediction_date: date
    as_of: datetime
    churn_score: float
    risk_level: RiskLevel
    components: list[Component]
    flags: list[FlagRead]
    explanation: list[str] = Field(
        description='Largest contribution first, e.g. "engagement decline contributed 21 of 68"')
    model_version: str
    rules_version: str | None
    rules_hash: str | None
    tier: str | None
    performance_index: float | None
    tier_history: list[TierChange] = Field(description="Latest 12 tier rows, newest first")
    model: ModelScore | None = Field(None, description="The ML model's score of the same day; null if not scored")
    drives_interventions: Literal["rules", "model"] = Field(
        "rules", description="Which churn score the intervention rules read now "
                             "(rules/scoring.yaml model.drives_interventions)")
    score_source: Literal["rules", "model"] = Field(
        "rules", description="Which score this prediction's interventions were decided on (the model falls back to the "
                             "rule score for a tutor it has not scored)")
    score_source_reason: str | None = None


class TierPage(BaseModel):
    tutor_id: str
    items: list[TierChange]
    total: int
    limit: int
    offset: int
