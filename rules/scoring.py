"""The scoring rule set (thresholds, weights, bumps, risk levels, tiers): schema and loading."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.loader import RulesError, VersionedRules, load_versioned

COMPONENTS = (
    "engagement_decline", "performance_trend", "reschedule_pattern", "first_session_quality",
    "no_show_risk", "tenure_risk", "availability_reduction",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thresholds(_Strict):
    avg_rating_min: float = Field(ge=1, le=5)
    first_session_success_min: float = Field(ge=0, le=1)
    reschedule_rate_max: float = Field(ge=0, le=1)
    no_show_rate_max: float = Field(ge=0, le=1)
    engagement_min: float = Field(ge=0, le=1)
    learning_objectives_min: float = Field(ge=0, le=1)


class EngagementSpec(_Strict):
    login_weight: float = Field(ge=0, le=1)
    prep_weight: float = Field(ge=0, le=1)
    communication_weight: float = Field(ge=0, le=1)
    expected_logins_per_day: float = Field(gt=0)
    expected_prep_minutes: float = Field(gt=0)
    response_good_minutes: float = Field(ge=0)
    response_bad_minutes: float = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> EngagementSpec:
        if abs(self.login_weight + self.prep_weight + self.communication_weight - 1) > 1e-6:
            raise ValueError("login_weight + prep_weight + communication_weight must be 1")
        if self.response_bad_minutes <= self.response_good_minutes:
            raise ValueError("response_bad_minutes must be greater than response_good_minutes")
        return self


class SecondarySpec(_Strict):
    response_time_percentile: float = Field(gt=0, le=100)
    required_training_modules: list[str] = Field(min_length=1)


class PopulationSpec(_Strict):
    inactive_after_days: int = Field(ge=1, le=365)


class ScoreWindows(_Strict):
    short: int = Field(ge=1)
    long: int = Field(ge=1)


class ComponentSpec(_Strict):
    engagement_decline_full_drop: float = Field(gt=0, le=1)
    performance_trend_full_drop: float = Field(gt=0, le=4)
    performance_trend_min_ratings: int = Field(ge=1)
    performance_floor_rating: float = Field(ge=1, le=5)
    reschedule_full_rate: float = Field(gt=0, le=1)
    no_show_full_rate: float = Field(gt=0, le=1)
    first_session_min_count: int = Field(ge=1)
    first_session_prior_success: float = Field(ge=0, le=1)
    tenure_full_risk_days: int = Field(ge=0)
    tenure_no_risk_days: int = Field(gt=0)
    availability_full_drop: float = Field(gt=0, le=1)


class PoorFirstSession(_Strict):
    lookback_days: int = Field(ge=1, le=90)
    rating_below: float = Field(ge=1, le=5)
    late_start_over_minutes: int = Field(ge=0)
    min_share: float = Field(ge=0, le=1)
    bump: float = Field(ge=0, le=100)
    # What a first-session "would not work with this tutor again" (Probably not / No) does: nothing, count as one
    # more poor first session, or raise the flag by itself whatever the share (the PRD's UI System 3 wording).
    not_again: Literal["ignore", "counts_as_poor", "flags_at_once"] = "ignore"


class HighReschedule(_Strict):
    window_days: int = Field(ge=1, le=90)
    more_than: int = Field(ge=0)
    min_rate: float = Field(ge=0, le=1)
    bump: float = Field(ge=0, le=100)


class NoShowRisk(_Strict):
    window_days: int = Field(ge=1, le=90)
    no_shows_over: int = Field(ge=0)
    min_rate: float = Field(ge=0, le=1)
    login_decline_over: float = Field(ge=0, le=1)
    missed_over: int = Field(ge=0)
    bump: float = Field(ge=0, le=100)


class Patterns(_Strict):
    poor_first_session: PoorFirstSession
    high_reschedule: HighReschedule
    no_show_risk: NoShowRisk


class RiskLevels(_Strict):
    Low: float
    Medium: float
    High: float
    Critical: float

    @model_validator(mode="after")
    def _increasing(self) -> RiskLevels:
        if not (0 <= self.Low < self.Medium < self.High < self.Critical == 100):
            raise ValueError("upper bounds must increase Low < Medium < High < Critical = 100")
        return self


TIERS = ("Exemplary", "Strong", "Developing", "Needs Attention", "At Risk")  # best first
INDEX_METRICS = ("avg_rating", "first_session_success_rate", "reschedule_rate", "no_show_rate",
                 "engagement_score", "learning_objectives_met_pct")
RiskLevelName = Literal["Low", "Medium", "High", "Critical"]


class IndexTerm(_Strict):
    weight: float = Field(ge=0, le=1)
    bad: float
    good: float

    @model_validator(mode="after")
    def _distinct(self) -> IndexTerm:
        if self.bad == self.good:
            raise ValueError("bad and good anchors must differ")
        return self


class RedFlags(_Strict):
    at_risk_risk_levels: list[RiskLevelName]
    needs_attention_risk_levels: list[RiskLevelName]
    needs_attention_metrics_below: int = Field(ge=1, le=6)
    exemplary_requires_all_green: bool
    strong_blocked_by_flags: bool


class Tiers(_Strict):
    window_days: int = Field(ge=1)
    min_sessions: int = Field(ge=0)
    index: dict[str, IndexTerm]
    shares: dict[str, float]
    red_flags: RedFlags

    @model_validator(mode="after")
    def _complete(self) -> Tiers:
        if set(self.index) != set(INDEX_METRICS):
            raise ValueError(f"index must name exactly {list(INDEX_METRICS)}")
        if abs(sum(t.weight for t in self.index.values()) - 1) > 1e-6:
            raise ValueError("index weights must sum to 1")
        if list(self.shares) != list(TIERS):
            raise ValueError(f"shares must list exactly {list(TIERS)}, best first")
        if abs(sum(self.shares.values()) - 1) > 1e-6 or min(self.shares.values()) < 0:
            raise ValueError("shares must be non-negative and sum to 1")
        return self


class ModelSpec(_Strict):
    """The ML churn model's output (PRD "ML Model Details", Output) and whether it drives interventions."""

    horizon_weights: dict[int, float]  # churn score = 100 x sum of weight x P(churn within h days)
    drives_interventions: Literal["rules", "model"] = "rules"
    explain_horizon: int = 30  # the horizon whose SHAP contributions name the top factors
    # Champion/challenger: a retrained candidate replaces the live model only when its mean validation AUC is
    # higher by more than this (0: any improvement).
    promotion_min_gain: float = Field(default=0.0, ge=0, le=0.5)

    @model_validator(mode="after")
    def _horizons(self) -> ModelSpec:
        if sorted(self.horizon_weights) != [1, 7, 30, 90]:
            raise ValueError("horizon_weights must name exactly the horizons 1, 7, 30 and 90")
        if min(self.horizon_weights.values()) < 0 or abs(sum(self.horizon_weights.values()) - 1) > 1e-6:
            raise ValueError("horizon_weights must be non-negative and sum to 1")
        if self.explain_horizon not in self.horizon_weights:
            raise ValueError(f"explain_horizon {self.explain_horizon} is not one of 1, 7, 30, 90")
        return self


class ScoringRuleSet(_Strict):
    ruleset: str
    version: int = Field(ge=1)
    status: Literal["draft", "shadow", "active", "retired"]
    owner: str
    changelog: str = ""
    windows_days: list[int] = Field(min_length=1)
    score_windows: ScoreWindows
    population: PopulationSpec
    rating_last_n_sessions: int = Field(ge=1)
    first_session_success_rating: float = Field(ge=1, le=5)
    thresholds: Thresholds
    engagement: EngagementSpec
    secondary: SecondarySpec
    weights: dict[str, float]
    components: ComponentSpec
    patterns: Patterns
    risk_levels: RiskLevels
    tiers: Tiers
    model: ModelSpec

    @model_validator(mode="after")
    def _weights(self) -> ScoringRuleSet:
        if set(self.weights) != set(COMPONENTS):
            raise ValueError(f"weights must name exactly {list(COMPONENTS)}")
        if abs(sum(self.weights.values()) - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, they sum to {sum(self.weights.values()):.4f}")
        for name, days in (("score_windows.short", self.score_windows.short), ("score_windows.long", self.score_windows.long),
                           ("tiers.window_days", self.tiers.window_days)):
            if days not in self.windows_days:
                raise ValueError(f"{name} = {days} is not one of windows_days {self.windows_days}")
        if self.score_windows.short >= self.score_windows.long:
            raise ValueError("score_windows.short must be shorter than score_windows.long")
        return self

    @property
    def history_days(self) -> int:
        """How far back an evaluation reads: the longest window any metric or detector uses."""
        p = self.patterns
        return max(*self.windows_days, p.no_show_risk.window_days, p.poor_first_session.lookback_days,
                   p.high_reschedule.window_days)

    def risk_level(self, score: float) -> str:
        for level in ("Low", "Medium", "High"):
            if score <= getattr(self.risk_levels, level):
                return level
        return "Critical"


ScoringRules = VersionedRules[ScoringRuleSet]


def load_scoring_rules(path: Path) -> ScoringRules:
    return load_versioned(path, ScoringRuleSet)


@lru_cache(maxsize=4)
def active_scoring_rules(rules_dir: Path) -> ScoringRules:
    return load_scoring_rules(rules_dir / "scoring.yaml")


__all__ = ["COMPONENTS", "INDEX_METRICS", "TIERS", "RulesError", "ScoringRules", "active_scoring_rules", "load_scoring_rules"]
