"""The scoring rule set (thresholds, weights, bumps, risk levels, tiers): schema and loading."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.loader import RulesError, content_hash, read_source, validate_model

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
    session_weight: float = Field(ge=0, le=1)
    expected_logins_per_day: float = Field(gt=0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> EngagementSpec:
        if abs(self.login_weight + self.session_weight - 1) > 1e-6:
            raise ValueError("login_weight + session_weight must be 1")
        return self


class ComponentSpec(_Strict):
    engagement_decline_full_drop: float = Field(gt=0, le=1)
    performance_trend_full_drop: float = Field(gt=0, le=4)
    performance_floor_rating: float = Field(ge=1, le=5)
    reschedule_full_rate: float = Field(gt=0, le=1)
    no_show_full_rate: float = Field(gt=0, le=1)
    tenure_full_risk_days: int = Field(ge=0)
    tenure_no_risk_days: int = Field(gt=0)
    availability_full_drop: float = Field(gt=0, le=1)


class PoorFirstSession(_Strict):
    lookback_days: int = Field(ge=1, le=90)
    rating_below: float = Field(ge=1, le=5)
    late_start_over_minutes: int = Field(ge=0)
    bump: float = Field(ge=0, le=100)


class HighReschedule(_Strict):
    window_days: int = Field(ge=1, le=90)
    more_than: int = Field(ge=0)
    bump: float = Field(ge=0, le=100)


class NoShowRisk(_Strict):
    window_days: int = Field(ge=1, le=90)
    no_shows_over: int = Field(ge=0)
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


class Tiers(_Strict):
    at_risk_min_score: float
    needs_attention_min_score: float
    exemplary_min_rating: float
    exemplary_max_score: float
    strong_min_rating: float
    strong_max_score: float


class ScoringRuleSet(_Strict):
    ruleset: str
    version: int = Field(ge=1)
    status: Literal["draft", "shadow", "active", "retired"]
    owner: str
    changelog: str = ""
    windows_days: list[int] = Field(min_length=1)
    rating_last_n_sessions: int = Field(ge=1)
    first_session_success_rating: float = Field(ge=1, le=5)
    thresholds: Thresholds
    engagement: EngagementSpec
    weights: dict[str, float]
    components: ComponentSpec
    patterns: Patterns
    risk_levels: RiskLevels
    tiers: Tiers

    @model_validator(mode="after")
    def _weights(self) -> ScoringRuleSet:
        if set(self.weights) != set(COMPONENTS):
            raise ValueError(f"weights must name exactly {list(COMPONENTS)}")
        if abs(sum(self.weights.values()) - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, they sum to {sum(self.weights.values()):.4f}")
        return self

    def risk_level(self, score: float) -> str:
        for level in ("Low", "Medium", "High"):
            if score <= getattr(self.risk_levels, level):
                return level
        return "Critical"


@dataclass(frozen=True)
class ScoringRules:
    spec: ScoringRuleSet
    hash: str

    @property
    def version_label(self) -> str:
        return f"{self.spec.ruleset}@v{self.spec.version}"


def load_scoring_rules(path: Path) -> ScoringRules:
    source = read_source(path)
    spec = validate_model(source, ScoringRuleSet)
    return ScoringRules(spec=spec, hash=content_hash(source.data))


@lru_cache(maxsize=4)
def active_scoring_rules(rules_dir: Path) -> ScoringRules:
    return load_scoring_rules(rules_dir / "scoring.yaml")


__all__ = ["COMPONENTS", "RulesError", "ScoringRules", "active_scoring_rules", "load_scoring_rules"]
