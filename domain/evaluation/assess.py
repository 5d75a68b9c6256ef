"""One tutor's assessment as a pure function of their history: metrics per window, churn score with its
components and flags, performance index and tier, and the facts the intervention rules read.

The per-session evaluation and the daily rollup both call this, so a tutor scores the same either way.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from domain.metrics.history import History
from domain.metrics.service import WindowMetrics, below_thresholds, window_metrics
from domain.scoring import patterns
from domain.scoring import service as scoring
from domain.tiers import service as tiers
from rules.scoring import ScoringRuleSet


@dataclass(frozen=True)
class Assessment:
    tutor_id: str
    as_of: datetime
    windows: dict[int, WindowMetrics]
    score: scoring.Score
    tier: tiers.TierResult
    tenure_days: int
    facts: dict[str, Any]

    @property
    def index(self) -> float | None:
        return self.tier.index


def assess(tutor_id: str, history: History, *, onboarding: date, as_of: datetime, rules: ScoringRuleSet,
           bounds: dict[str, float] | None) -> Assessment:
    windows = {d: window_metrics(history, as_of=as_of, days=d, rules=rules) for d in rules.windows_days}
    short, long = windows[rules.score_windows.short], windows[rules.score_windows.long]
    tenure = scoring.tenure_days(onboarding, as_of)
    flags = scoring.detect_patterns(history, as_of=as_of, rules=rules)
    score = scoring.churn_score(scoring.components(short, long, tenure_days=tenure, rules=rules), flags, rules)
    index = tiers.performance_index(windows[rules.tiers.window_days], rules)
    tier = _tier(index, windows, score, bounds=bounds, rules=rules)
    names = {f.name for f in flags}
    facts = {
        "churn_score": score.churn_score, "risk_level": score.risk_level, "tier": tier.tier, "tenure_days": tenure,
        "avg_rating_30d": long.avg_rating, "metrics_below_threshold": len(below_thresholds(long, rules)),
        "first_sessions_recent": scoring.first_sessions_since(history, as_of - scoring.ONE_DAY),
        "flag_poor_first_session": "poor_first_session" in names, "flag_high_reschedule": "high_reschedule" in names,
        "flag_no_show_risk": "no_show_risk" in names,
        # Activity and skill signals H4 ("reduced activity") and A2 ("skill gap") read.
        "sessions_7d_vs_30d": _ratio(short.sessions_scheduled, long.sessions_scheduled * short.days / long.days),
        "login_decline_week": patterns.login_decline(history, as_of=as_of, days=14),
        "weakest_subject_rating_30d": min(long.satisfaction_by_subject.values(), default=None),
        "weakest_subject": min(long.satisfaction_by_subject, key=long.satisfaction_by_subject.get, default=None),
        # A3 checks in on every held first session with a new student, one case per session.
        "first_session_ids": [x.session_id for x in history.sessions if x.session_number == 1 and not x.no_show
                              and as_of - scoring.ONE_DAY <= x.scheduled_start < as_of],
    }
    return Assessment(tutor_id=tutor_id, as_of=as_of, windows=windows, score=score, tier=tier, tenure_days=tenure,
                      facts=facts)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 3) if whole else None


def _tier(index: float | None, windows: dict[int, WindowMetrics], score: scoring.Score, *,
          bounds: dict[str, float] | None, rules: ScoringRuleSet) -> tiers.TierResult:
    return tiers.assign(index, bounds=bounds, risk_level=score.risk_level, flag_names=[f.name for f in score.flags],
                        metrics=windows[rules.tiers.window_days], rules=rules)


def retier(a: Assessment, bounds: dict[str, float], rules: ScoringRuleSet) -> Assessment:
    """The same assessment mapped through new cut-offs (the review computes them after assessing everyone)."""
    tier = _tier(a.tier.index, a.windows, a.score, bounds=bounds, rules=rules)
    return replace(a, tier=tier, facts={**a.facts, "tier": tier.tier})
