"""Whole-population evaluation: the daily rollup (PRD "aggregate metrics updated at midnight UTC"), the monthly
tier review (percentile cut-offs from the population) and the weekly 7-day moving averages.

Each reads every tutor's history in two queries and writes in one transaction, so recomputing ~300 tutors over
90 days takes seconds. Tutors with nothing recent are evaluated too: a tutor who stops teaching must see their
churn score rise even though no session arrives to trigger the per-session evaluation.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, select, update
from sqlmodel import Session

from core.types import utcnow
from domain.evaluation.assess import Assessment, assess, retier
from domain.evaluation.store import prefetch, save
from domain.metrics.service import History, load_histories, window_metrics
from domain.scoring.models import ChurnPrediction, latest_prediction_days
from domain.tiers import service as tiers
from domain.trends.models import WeeklyTrend
from domain.tutors.models import Tutor, TutorStatus
from rules.scoring import TIERS, ScoringRules

Progress = Callable[[str], None]


@dataclass
class RollupResult:
    as_of: datetime
    tutors: int
    active: int
    seconds: float
    review: str | None  # "monthly_review" / "initial" when cut-offs were (re)computed
    tier_counts: dict[str, int] = field(default_factory=dict)  # active tutors only: the ranked population
    risk_counts: dict[str, int] = field(default_factory=dict)
    risk_changed: list[str] = field(default_factory=list)  # tutors whose risk level moved: their workflows re-decide
    status_changed: int = 0


def _population(db: Session, as_of: datetime) -> list[tuple[str, object, str]]:
    rows = db.execute(select(Tutor.tutor_id, Tutor.onboarding_date, Tutor.status)
                      .where(Tutor.status != TutorStatus.churned.value, Tutor.onboarding_date <= as_of.date())
                      .order_by(Tutor.tutor_id)).all()
    return [tuple(r) for r in rows]


def _is_active(history: History, *, as_of: datetime, tenure_days: int, inactive_after_days: int) -> bool:
    """PRD inactivity: no session scheduled in the last N days (a tutor newer than N days is still ramping up)."""
    if tenure_days < inactive_after_days:
        return True
    since = as_of - timedelta(days=inactive_after_days)
    return any(s.scheduled_start >= since for s in reversed(history.sessions))


def _previous_risk(db: Session, as_of: datetime) -> dict[str, str]:
    """Each tutor's risk level from their latest prediction before ``as_of``'s day."""
    p = ChurnPrediction
    latest = latest_prediction_days(as_of.date() - timedelta(days=1))
    rows = db.execute(select(p.tutor_id, p.risk_level).join(
        latest, and_(p.tutor_id == latest.c.tutor_id, p.prediction_date == latest.c.day))).all()
    return {t: r for t, r in rows}


def evaluate_population(db: Session, *, as_of: datetime, rules: ScoringRules, review: bool = False,
                        now: datetime | None = None, progress: Progress | None = None) -> RollupResult:
    """Assesses every tutor as of ``as_of`` and stores it. ``review`` recomputes the tier cut-offs from this
    population first (the monthly review); without cut-offs yet, the first run computes them ("initial")."""
    started, now, spec = time.perf_counter(), now or utcnow(), rules.spec
    as_of = as_of.astimezone(UTC)  # rows are keyed by the UTC day, whatever zone the caller wrote as_of in
    say = progress or (lambda _line: None)
    people = _population(db, as_of)
    histories = load_histories(db, [t for t, _, _ in people], since=as_of - timedelta(days=spec.history_days), until=as_of)
    say(f"loaded {len(people)} tutors' histories in {time.perf_counter() - started:.1f}s")
    cut = tiers.latest_cutoffs(db)
    bounds = cut.lower_bounds if cut and not review else None
    assessed: list[Assessment] = []
    active: set[str] = set()
    for tutor_id, onboarding, _status in people:
        a = assess(tutor_id, histories[tutor_id], onboarding=onboarding, as_of=as_of, rules=spec, bounds=bounds)
        assessed.append(a)
        if _is_active(histories[tutor_id], as_of=as_of, tenure_days=a.tenure_days,
                      inactive_after_days=spec.population.inactive_after_days):
            active.add(tutor_id)
    say(f"assessed {len(assessed)} tutors in {time.perf_counter() - started:.1f}s")

    reason = "monthly_review" if review else ("initial" if cut is None else None)
    if reason:
        ranked = [a.index for a in assessed if a.tutor_id in active and a.index is not None]
        bounds = tiers.cutoffs_from(ranked, spec)
        tiers.store_cutoffs(db, bounds, population=len(ranked), as_of=as_of, reason=reason, rules=rules)
        assessed = [retier(a, bounds, spec) for a in assessed]
        say(f"tier cut-offs from {len(ranked)} ranked tutors: " + ", ".join(f"{t} >= {b:.3f}" for t, b in bounds.items()))

    before = _previous_risk(db, as_of)
    previous_tiers = tiers.current_tiers(db)
    rows = prefetch(db, as_of.date())
    for a in assessed:
        save(db, a, rows, rules=rules, now=now)
        tiers.record(db, a.tutor_id, a.tier, previous=previous_tiers.get(a.tutor_id), as_of=as_of,
                     source="monthly_review" if reason else "evaluation", rules=rules)
    status_changed = _update_statuses(db, {t: s for t, _, s in people}, active)
    result = RollupResult(
        as_of=as_of, tutors=len(assessed), active=len(active), seconds=0.0, review=reason,
        tier_counts={t: sum(1 for a in assessed if a.tutor_id in active and a.tier.tier == t) for t in TIERS},
        risk_counts=dict(Counter(a.score.risk_level for a in assessed if a.tutor_id in active)),
        risk_changed=[a.tutor_id for a in assessed if before.get(a.tutor_id) not in (None, a.score.risk_level)],
        status_changed=status_changed,
    )
    result.seconds = time.perf_counter() - started
    say(f"stored {len(assessed)} evaluations in {result.seconds:.1f}s")
    return result


def _update_statuses(db: Session, statuses: dict[str, str], active: set[str]) -> int:
    wake = [t for t, s in statuses.items() if t in active and s == TutorStatus.inactive.value]
    sleep = [t for t, s in statuses.items() if t not in active and s == TutorStatus.active.value]
    for ids, status in ((wake, TutorStatus.active), (sleep, TutorStatus.inactive)):
        if ids:
            db.execute(update(Tutor).where(Tutor.tutor_id.in_(ids)).values(status=status.value, updated_at=utcnow()))
    return len(wake) + len(sleep)


TREND_METRICS = ("sessions_scheduled", "satisfaction_avg", "reschedule_rate", "no_show_rate", "engagement_score",
                 "learning_objectives_met_pct", "first_session_success_rate")


def weekly_trends(db: Session, *, as_of: datetime, rules: ScoringRules, now: datetime | None = None) -> int:
    """Stores each tutor's 7-day moving averages for the week ending at ``as_of`` against the week before."""
    now, spec, as_of = now or utcnow(), rules.spec, as_of.astimezone(UTC)
    people = _population(db, as_of)
    histories = load_histories(db, [t for t, _, _ in people], since=as_of - timedelta(days=14), until=as_of)
    existing = {r.tutor_id: r for r in db.execute(select(WeeklyTrend).where(WeeklyTrend.week_ending == as_of.date())).scalars()}
    for tutor_id, _, _ in people:
        cur = window_metrics(histories[tutor_id], as_of=as_of, days=7, rules=spec)
        prev = window_metrics(histories[tutor_id], as_of=as_of - timedelta(days=7), days=7, rules=spec)
        averages = {}
        for name in TREND_METRICS:
            c, p = getattr(cur, name), getattr(prev, name)
            if name == "sessions_scheduled":  # a count becomes a per-day moving average
                name, c, p = "sessions_per_day", c / 7, p / 7
            averages[name] = {"current": _r(c), "previous": _r(p),
                              "change": _r(c - p) if c is not None and p is not None else None}
        row = existing.get(tutor_id)
        if row is None:
            row = WeeklyTrend(tutor_id=tutor_id, week_ending=as_of.date(), rules_version=rules.version_label, created_at=now)
            db.add(row)
        row.moving_averages, row.rules_version, row.updated_at = averages, rules.version_label, now
    return len(people)


def _r(v: float | None) -> float | None:
    return round(v, 4) if v is not None else None
