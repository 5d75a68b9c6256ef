"""The first-session alert rule set (threshold, training guards, the tutor's prep reminder): schema and loading."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.loader import RulesError, VersionedRules, load_versioned

# Tutors never see risk figures (PRD: "tutor-visible" text is anonymised and score-free): a reminder text that
# templates a value in, or talks about risk, would leak what only staff may see.
_TUTOR_FORBIDDEN = re.compile(r"[{}%]|\b(risk|risky|probability|chance|likel(y|ihood)|score|predict\w*)\b", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainingSpec(_Strict):
    min_first_sessions: int = Field(ge=30)
    min_poor_per_segment: int = Field(ge=1)
    c_grid: list[float] = Field(min_length=1)
    promotion_min_gain: float = Field(ge=0, le=0.5)

    @field_validator("c_grid")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if min(v) <= 0:
            raise ValueError("every C must be positive")
        return sorted(set(v))


class AlertSpec(_Strict):
    top_factors: int = Field(ge=1, le=10)


class ReminderSpec(_Strict):
    enabled: bool
    intervention_type: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")
    title: str = Field(min_length=1, max_length=120)
    message_subject: str = Field(min_length=1, max_length=200)
    message_body: str = Field(min_length=1, max_length=4000)

    @field_validator("message_subject", "message_body")
    @classmethod
    def _tutor_safe(cls, v: str) -> str:
        hit = _TUTOR_FORBIDDEN.search(v)
        if hit:
            raise ValueError(f"tutor-facing text must not contain {hit.group(0)!r}: tutors never see risk "
                             "figures, and the text is sent as written (no placeholders)")
        return v


class FirstSessionRuleSet(_Strict):
    ruleset: str
    version: int = Field(ge=1)
    status: Literal["draft", "shadow", "active", "retired"]
    owner: str
    changelog: str = ""
    poor_rating_below: float = Field(gt=1, le=5)
    alert_threshold: float = Field(gt=0, lt=1)
    training: TrainingSpec
    alerts: AlertSpec
    reminder: ReminderSpec

    @model_validator(mode="after")
    def _guards(self) -> FirstSessionRuleSet:
        if self.training.min_poor_per_segment * 3 > self.training.min_first_sessions:
            raise ValueError("training.min_first_sessions must allow min_poor_per_segment poor ones in each of 3 segments")
        return self


FirstSessionRules = VersionedRules[FirstSessionRuleSet]


def load_first_session_rules(path: Path) -> FirstSessionRules:
    return load_versioned(path, FirstSessionRuleSet)


@lru_cache(maxsize=4)
def active_first_session_rules(rules_dir: Path) -> FirstSessionRules:
    return load_first_session_rules(rules_dir / "first_session.yaml")


__all__ = ["FirstSessionRules", "RulesError", "active_first_session_rules", "load_first_session_rules"]
