"""PRD §2.1 core and §2.2 secondary metrics over a window, as pure functions of a tutor's history.

Definitions (the PRD's, made exact):
- session rating average: mean rating of the last ``rating_last_n_sessions`` rated, held sessions in the window;
- first-session success rate: share of rated first sessions (session_number 1) rated >= the success rating;
- reschedule / no-show rate: tutor-initiated reschedules / no-shows over sessions scheduled in the window;
- engagement score: weighted login frequency, session prep and communication parts, each 0-1;
- learning objectives met: share of held sessions whose objectives were met (of those reporting it).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.metrics.history import History, SessionFact, in_window, load_histories, load_history
from rules.scoring import ScoringRuleSet

__all__ = ["History", "SessionFact", "WindowMetrics", "below_thresholds", "in_window", "load_histories",
           "load_history", "percentile", "window_metrics"]


@dataclass(frozen=True)
class WindowMetrics:
    days: int
    sessions_scheduled: int
    sessions_completed: int
    avg_rating: float | None
    first_session_count: int
    first_session_success_rate: float | None
    reschedule_count: int
    reschedule_rate: float | None
    no_show_count: int
    no_show_rate: float | None
    logins: int
    engagement_score: float | None
    learning_objectives_met_pct: float | None
    response_time_avg_minutes: float | None
    # Secondary metrics (PRD §2.2) and the engagement composite's parts, kept so a score can be explained.
    response_time_p95_minutes: float | None = None
    satisfaction_avg: float | None = None
    satisfaction_by_subject: dict[str, float] = field(default_factory=dict)
    satisfaction_by_session_type: dict[str, float] = field(default_factory=dict)
    trainings_completed: int = 0
    pd_completion_rate: float | None = None
    availability_changes_per_week: float = 0.0
    availability_hours_delta: float = 0.0
    technical_issues_per_session: float | None = None
    late_start_rate: float | None = None
    session_prep_minutes_avg: float | None = None
    engagement_parts: dict[str, float | None] = field(default_factory=dict)
    first_session_rated: int = 0  # the success rate's denominator (held, rated first sessions)
    ratings_count: int = 0  # rated, held sessions in the window


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), q in 0-100."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _by(held: list[SessionFact], key: str) -> dict[str, float]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in held:
        if s.rating is not None:
            groups[getattr(s, key)].append(s.rating)
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(groups.items())}


def engagement_parts(h: History, *, days: int, rules: ScoringRuleSet) -> dict[str, float | None]:
    e = rules.engagement
    prep = _mean([p for _, p in h.login_prep])
    response = _mean(h.response_minutes)
    communication = None
    if response is not None:
        span = e.response_bad_minutes - e.response_good_minutes
        communication = max(0.0, min(1.0, (e.response_bad_minutes - response) / span))
    return {
        "login_frequency": min(1.0, len(h.logins) / (days * e.expected_logins_per_day)),
        # No logins means no prep was done: inactivity is disengagement, not missing data.
        "session_prep": min(1.0, (prep or 0.0) / e.expected_prep_minutes),
        # No messages to answer is missing data: that part's weight goes to the others.
        "communication": communication,
    }


def engagement_score(parts: dict[str, float | None], rules: ScoringRuleSet) -> float:
    e = rules.engagement
    weights = {"login_frequency": e.login_weight, "session_prep": e.prep_weight, "communication": e.communication_weight}
    present = {k: w for k, w in weights.items() if parts.get(k) is not None}
    total = sum(present.values())
    return sum(w * parts[k] for k, w in present.items()) / total if total else 0.0  # type: ignore[operator]


def window_metrics(history: History, *, as_of: datetime, days: int, rules: ScoringRuleSet) -> WindowMetrics:
    h = in_window(history, as_of=as_of, days=days)
    held = [s for s in h.sessions if not s.no_show]
    ratings = [s.rating for s in held if s.rating is not None]
    first_rated = [s.rating for s in held if s.session_number == 1 and s.rating is not None]
    scheduled = len(h.sessions)
    no_shows = sum(s.no_show for s in h.sessions)
    reschedules = sum(s.rescheduled for s in h.sessions)
    objectives = [s.objectives_met for s in held if s.objectives_met is not None]
    parts = engagement_parts(h, days=days, rules=rules)
    required = set(rules.secondary.required_training_modules)
    done = {m for _, m in h.trainings if m in required}
    return WindowMetrics(
        days=days,
        sessions_scheduled=scheduled,
        sessions_completed=len(held),
        avg_rating=_mean(ratings[-rules.rating_last_n_sessions:]),
        first_session_count=sum(1 for s in h.sessions if s.session_number == 1),
        first_session_success_rate=(sum(r >= rules.first_session_success_rating for r in first_rated) / len(first_rated))
        if first_rated else None,
        reschedule_count=reschedules,
        reschedule_rate=reschedules / scheduled if scheduled else None,
        no_show_count=no_shows,
        no_show_rate=no_shows / scheduled if scheduled else None,
        logins=len(h.logins),
        engagement_score=engagement_score(parts, rules),
        learning_objectives_met_pct=sum(objectives) / len(objectives) if objectives else None,
        response_time_avg_minutes=_mean(h.response_minutes),
        response_time_p95_minutes=percentile(h.response_minutes, rules.secondary.response_time_percentile),
        satisfaction_avg=_mean(ratings),
        satisfaction_by_subject=_by(held, "subject"),
        satisfaction_by_session_type=_by(held, "session_type"),
        trainings_completed=len(h.trainings),
        pd_completion_rate=len(done) / len(required),
        availability_changes_per_week=len(h.availability_changes) / days * 7,
        availability_hours_delta=sum(d for _, d in h.availability_changes),
        technical_issues_per_session=sum(s.technical_issues for s in held) / len(held) if held else None,
        late_start_rate=sum(s.late_start_minutes > 0 for s in held) / len(held) if held else None,
        session_prep_minutes_avg=_mean([p for _, p in h.login_prep]),
        engagement_parts=parts,
        first_session_rated=len(first_rated),
        ratings_count=len(ratings),
    )


def below_thresholds(m: WindowMetrics, rules: ScoringRuleSet) -> list[str]:
    """Names of the core metrics on the wrong side of their PRD threshold (metrics without data are not counted)."""
    t = rules.thresholds
    checks = {
        "avg_rating": m.avg_rating is not None and m.avg_rating < t.avg_rating_min,
        "first_session_success_rate": m.first_session_success_rate is not None
        and m.first_session_success_rate < t.first_session_success_min,
        "reschedule_rate": m.reschedule_rate is not None and m.reschedule_rate > t.reschedule_rate_max,
        "no_show_rate": m.no_show_rate is not None and m.no_show_rate > t.no_show_rate_max,
        "engagement_score": m.engagement_score is not None and m.engagement_score < t.engagement_min,
        "learning_objectives_met_pct": m.learning_objectives_met_pct is not None
        and m.learning_objectives_met_pct < t.learning_objectives_min,
    }
    return [name for name, bad in checks.items() if bad]
