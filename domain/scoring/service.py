"""Rule-based churn score (PRD §3.1): seven 0-100 components, weighted, plus the §3.3 pattern bumps."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.metrics.history import History
from domain.metrics.service import WindowMetrics
from domain.scoring.patterns import Flag, detect_patterns
from rules.scoring import COMPONENTS, ScoringRuleSet

__all__ = ["Flag", "Score", "churn_score", "components", "detect_patterns", "explain", "tenure_days"]

LABELS = {
    "engagement_decline": "engagement decline", "performance_trend": "performance trend",
    "reschedule_pattern": "reschedule pattern", "first_session_quality": "first-session quality",
    "no_show_risk": "no-show risk", "tenure_risk": "tenure risk", "availability_reduction": "availability reduction",
    "pattern_poor_first_session": "poor first session flag", "pattern_high_reschedule": "high rescheduling flag",
    "pattern_no_show_risk": "no-show risk flag",
}


@dataclass(frozen=True)
class Score:
    churn_score: float
    risk_level: str
    components: dict[str, float]
    flags: list[Flag]

    def contributing_factors(self, rules: ScoringRuleSet) -> dict[str, Any]:
        factors: dict[str, Any] = {
            name: {"score": round(value, 1), "weight": rules.weights[name],
                   "contribution": round(rules.weights[name] * value, 1)}
            for name, value in self.components.items()
        }
        for flag in self.flags:
            factors[f"pattern_{flag.name}"] = {"score": 100.0, "weight": None, "contribution": flag.bump}
        return factors


def explain(factors: dict[str, Any], churn_score: float) -> list[str]:
    """Plain sentences, largest contribution first: "engagement decline contributed 21 of 68"."""
    ranked = sorted(factors.items(), key=lambda kv: -kv[1]["contribution"])
    lines = []
    for name, f in ranked:
        if f["contribution"] <= 0:
            continue
        label = LABELS.get(name) or name.removeprefix("pattern_").replace("_", " ") + " pattern"
        lines.append(f"{label} contributed {f['contribution']:g} of {churn_score:g}")
    total = round(sum(f["contribution"] for f in factors.values()), 1)
    if churn_score >= 100 and total > 100:  # the score is clamped; rounding alone is not worth a line
        lines.append(f"together {total:g}, capped at {churn_score:g}")
    return lines


def _clamp(x: float) -> float:
    return max(0.0, min(100.0, x))


def components(short: WindowMetrics, long: WindowMetrics, *, tenure_days: int, rules: ScoringRuleSet) -> dict[str, float]:
    c, t = rules.components, rules.thresholds
    out: dict[str, float] = {}

    e_s, e_l = short.engagement_score or 0.0, long.engagement_score or 0.0
    decline = max(0.0, (e_l - e_s) / e_l) if e_l > 0 else 0.0
    low = max(0.0, (t.engagement_min - e_s) / t.engagement_min)
    out["engagement_decline"] = _clamp(max(decline / c.engagement_decline_full_drop, low) * 100)

    r_s, r_l = short.avg_rating, long.avg_rating
    # One or two ratings in the short window are noise, not a trend (a tutor winding down has a last lone rating).
    enough = short.ratings_count >= c.performance_trend_min_ratings
    trend = max(0.0, (r_l - r_s) / c.performance_trend_full_drop) if enough and r_s is not None and r_l is not None else 0.0
    span = t.avg_rating_min - c.performance_floor_rating
    level = max(0.0, (t.avg_rating_min - r_l) / span) if r_l is not None and span > 0 else 0.0
    out["performance_trend"] = _clamp(max(trend, level) * 100)

    out["reschedule_pattern"] = _clamp((long.reschedule_rate or 0.0) / c.reschedule_full_rate * 100)

    # A tutor's first one or two first sessions say little: shrink their success rate toward the platform prior.
    n = long.first_session_rated
    fs = long.first_session_success_rate
    if fs is None:
        out["first_session_quality"] = 0.0
    else:
        missing = max(0, c.first_session_min_count - n)
        shrunk = (fs * n + c.first_session_prior_success * missing) / (n + missing)
        out["first_session_quality"] = _clamp((1 - shrunk) * 100)

    out["no_show_risk"] = _clamp((long.no_show_rate or 0.0) / c.no_show_full_rate * 100)

    if tenure_days <= c.tenure_full_risk_days:
        out["tenure_risk"] = 100.0
    else:
        span_days = max(1, c.tenure_no_risk_days - c.tenure_full_risk_days)
        out["tenure_risk"] = _clamp((c.tenure_no_risk_days - tenure_days) / span_days * 100)

    # The long window's pace counts only the days the tutor has been with us: a 10-day-old tutor is not
    # "reduced" for having nothing in the 20 days before they joined.
    active_days = max(1, min(long.days, tenure_days))
    pace = long.sessions_scheduled / active_days
    if pace > 0:
        drop = max(0.0, 1 - short.sessions_scheduled / (pace * min(short.days, active_days)))
        out["availability_reduction"] = _clamp(drop / c.availability_full_drop * 100)
    else:
        # Nothing in the long window: fully reduced for an established tutor, no signal for a brand-new one.
        out["availability_reduction"] = 100.0 if tenure_days > long.days else 0.0
    assert set(out) == set(COMPONENTS)
    return out


def churn_score(comps: dict[str, float], flags: list[Flag], rules: ScoringRuleSet) -> Score:
    total = sum(rules.weights[name] * value for name, value in comps.items()) + sum(f.bump for f in flags)
    total = round(_clamp(total), 1)
    return Score(churn_score=total, risk_level=rules.risk_level(total), components=comps, flags=flags)


def tenure_days(onboarding: date, as_of: datetime) -> int:
    # The UTC day, whatever zone as_of is written in: the same instant gives the same tenure.
    return max(0, (as_of.astimezone(UTC).date() - onboarding).days)


def first_sessions_since(history: History, since: datetime) -> int:
    return sum(1 for s in history.sessions if s.session_number == 1 and s.scheduled_start >= since)


ONE_DAY = timedelta(days=1)
