"""Rule-based churn score (PRD §3.1): seven 0-100 components, weighted, plus the §3.3 pattern bumps."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from domain.metrics.service import History, WindowMetrics, in_window
from rules.scoring import COMPONENTS, ScoringRuleSet


@dataclass(frozen=True)
class Flag:
    name: str
    triggered_at: datetime
    bump: float
    summary: str  # the reason in plain words, as an ops user reads it
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "triggered_at": self.triggered_at.isoformat(), "bump": self.bump,
                "summary": self.summary, "evidence": self.evidence}


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


def _clamp(x: float) -> float:
    return max(0.0, min(100.0, x))


def components(short: WindowMetrics, long: WindowMetrics, *, tenure_days: int, rules: ScoringRuleSet) -> dict[str, float]:
    c, t = rules.components, rules.thresholds
    out: dict[str, float] = {}

    e7, e30 = short.engagement_score or 0.0, long.engagement_score or 0.0
    decline = max(0.0, (e30 - e7) / e30) if e30 > 0 else 0.0
    low = max(0.0, (t.engagement_min - e7) / t.engagement_min)
    out["engagement_decline"] = _clamp(max(decline / c.engagement_decline_full_drop, low) * 100)

    r7, r30 = short.avg_rating, long.avg_rating
    trend = max(0.0, (r30 - r7) / c.performance_trend_full_drop) if r7 is not None and r30 is not None else 0.0
    span = t.avg_rating_min - c.performance_floor_rating
    level = max(0.0, (t.avg_rating_min - r30) / span) if r30 is not None and span > 0 else 0.0
    out["performance_trend"] = _clamp(max(trend, level) * 100)

    out["reschedule_pattern"] = _clamp((long.reschedule_rate or 0.0) / c.reschedule_full_rate * 100)
    fs = long.first_session_success_rate
    out["first_session_quality"] = _clamp((1 - fs) * 100) if fs is not None else 0.0
    out["no_show_risk"] = _clamp((long.no_show_rate or 0.0) / c.no_show_full_rate * 100)

    if tenure_days <= c.tenure_full_risk_days:
        out["tenure_risk"] = 100.0
    else:
        span_days = max(1, c.tenure_no_risk_days - c.tenure_full_risk_days)
        out["tenure_risk"] = _clamp((c.tenure_no_risk_days - tenure_days) / span_days * 100)

    weekly_pace = long.sessions_scheduled / long.days * 7
    if weekly_pace > 0:
        drop = max(0.0, 1 - short.sessions_scheduled / (weekly_pace * short.days / 7))
        out["availability_reduction"] = _clamp(drop / c.availability_full_drop * 100)
    else:
        # Nothing in the long window: fully reduced for an established tutor, no signal for a brand-new one.
        out["availability_reduction"] = 100.0 if tenure_days > long.days else 0.0
    assert set(out) == set(COMPONENTS)
    return out


def detect_patterns(history: History, *, as_of: datetime, rules: ScoringRuleSet) -> list[Flag]:
    p = rules.patterns
    flags: list[Flag] = []

    recent = in_window(history, as_of=as_of, days=p.poor_first_session.lookback_days).sessions
    poor = [s for s in recent if s.session_number == 1 and (
        (s.rating is not None and s.rating < p.poor_first_session.rating_below)
        or s.late_start_minutes > p.poor_first_session.late_start_over_minutes)]
    if poor:
        flags.append(Flag("poor_first_session", poor[0].scheduled_start, p.poor_first_session.bump,
                          f"{len(poor)} poor first session{'s' if len(poor) > 1 else ''} in {p.poor_first_session.lookback_days} days "
                          f"(rated < {p.poor_first_session.rating_below:g} or > {p.poor_first_session.late_start_over_minutes} min late)",
                          {"session_ids": [s.session_id for s in poor]}))

    window = in_window(history, as_of=as_of, days=p.high_reschedule.window_days).sessions
    resched = [s for s in window if s.rescheduled]
    if len(resched) > p.high_reschedule.more_than:
        flags.append(Flag("high_reschedule", resched[p.high_reschedule.more_than].scheduled_start, p.high_reschedule.bump,
                          f"{len(resched)} tutor-initiated reschedules in {p.high_reschedule.window_days} days",
                          {"session_ids": [s.session_id for s in resched], "count": len(resched)}))

    ns = p.no_show_risk
    half = ns.window_days // 2
    recent_ns = in_window(history, as_of=as_of, days=ns.window_days)
    no_shows = [s for s in recent_ns.sessions if s.no_show]
    logins_now = len(in_window(history, as_of=as_of, days=half).logins)
    logins_before = len(in_window(history, as_of=as_of, days=half, offset_days=half).logins)
    login_decline = 1 - logins_now / logins_before if logins_before else 0.0
    if len(no_shows) > ns.no_shows_over or (login_decline > ns.login_decline_over and len(no_shows) > ns.missed_over):
        logins = f", logins down {login_decline:.0%}" if login_decline > 0 else ""
        flags.append(Flag("no_show_risk", no_shows[0].scheduled_start if no_shows else as_of, ns.bump,
                          f"{len(no_shows)} no-show{'s' if len(no_shows) != 1 else ''} in {ns.window_days} days{logins}",
                          {"session_ids": [s.session_id for s in no_shows], "login_decline": round(login_decline, 2)}))
    return flags


def churn_score(comps: dict[str, float], flags: list[Flag], rules: ScoringRuleSet) -> Score:
    total = sum(rules.weights[name] * value for name, value in comps.items()) + sum(f.bump for f in flags)
    total = round(_clamp(total), 1)
    return Score(churn_score=total, risk_level=rules.risk_level(total), components=comps, flags=flags)


def tier(score: Score, long: WindowMetrics, rules: ScoringRuleSet) -> str:
    t = rules.tiers
    rating = long.avg_rating or 0.0
    if score.churn_score >= t.at_risk_min_score:
        return "At Risk"
    if score.churn_score >= t.needs_attention_min_score:
        return "Needs Attention"
    if rating >= t.exemplary_min_rating and score.churn_score <= t.exemplary_max_score and not score.flags:
        return "Exemplary"
    if rating >= t.strong_min_rating and score.churn_score <= t.strong_max_score:
        return "Strong"
    return "Developing"


def tenure_days(onboarding: date, as_of: datetime) -> int:
    return max(0, (as_of.date() - onboarding).days)


def first_sessions_since(history: History, since: datetime) -> int:
    return sum(1 for s in history.sessions if s.session_number == 1 and s.scheduled_start > since)


ONE_DAY = timedelta(days=1)
