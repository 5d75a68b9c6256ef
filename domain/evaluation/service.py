"""One tutor's evaluation: metrics per window, churn score, tier, flags -> stored; returns the rule facts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from core.types import utcnow
from domain.metrics.models import TutorPerformanceMetric
from domain.metrics.service import WindowMetrics, below_thresholds, load_history, window_metrics
from domain.scoring import service as scoring
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor
from rules.scoring import ScoringRules


class UnknownTutor(LookupError):
    pass


@dataclass(frozen=True)
class Evaluation:
    tutor_id: str
    as_of: datetime
    score: scoring.Score
    tier: str
    windows: dict[int, WindowMetrics]
    facts: dict[str, Any]
    sessions_marked: int


def _upsert_metric(db: Session, tutor_id: str, m: WindowMetrics, *, as_of: datetime, tier: str, rules_label: str, now: datetime) -> None:
    window = f"{m.days}day"
    row = db.execute(select(TutorPerformanceMetric).where(
        TutorPerformanceMetric.tutor_id == tutor_id, TutorPerformanceMetric.window == window,
        TutorPerformanceMetric.calculation_date == as_of.date())).scalar_one_or_none()
    if row is None:
        row = TutorPerformanceMetric(tutor_id=tutor_id, window=window, calculation_date=as_of.date(), as_of=as_of, created_at=now)
        db.add(row)
    row.as_of, row.updated_at, row.performance_tier, row.rules_version = as_of, now, tier, rules_label
    row.sessions_scheduled, row.sessions_completed = m.sessions_scheduled, m.sessions_completed
    row.avg_rating, row.first_session_count = m.avg_rating, m.first_session_count
    row.first_session_success_rate, row.reschedule_rate = m.first_session_success_rate, m.reschedule_rate
    row.no_show_count, row.no_show_rate, row.engagement_score = m.no_show_count, m.no_show_rate, m.engagement_score
    row.learning_objectives_met_pct, row.response_time_avg_minutes = m.learning_objectives_met_pct, m.response_time_avg_minutes


def _upsert_prediction(db: Session, tutor_id: str, score: scoring.Score, *, as_of: datetime, rules: ScoringRules, now: datetime) -> None:
    row = db.execute(select(ChurnPrediction).where(
        ChurnPrediction.tutor_id == tutor_id, ChurnPrediction.prediction_date == as_of.date())).scalar_one_or_none()
    if row is None:
        row = ChurnPrediction(tutor_id=tutor_id, prediction_date=as_of.date(), as_of=as_of, churn_score=0,
                              risk_level="Low", model_version="", created_at=now)
        db.add(row)
    row.as_of, row.updated_at = as_of, now
    row.churn_score, row.risk_level = score.churn_score, score.risk_level
    row.contributing_factors = score.contributing_factors(rules.spec)
    row.flags = [f.as_dict() for f in score.flags]
    row.model_version = f"rules:{rules.version_label}"
    row.rules_version, row.rules_hash = rules.version_label, rules.hash


def evaluate_tutor(db: Session, tutor_id: str, *, as_of: datetime, rules: ScoringRules, now: datetime | None = None) -> Evaluation:
    """Recomputes and stores everything for ``tutor_id`` as of ``as_of``; marks the pending sessions it covered."""
    now = now or utcnow()
    spec = rules.spec
    tutor = db.get(Tutor, tutor_id)
    if tutor is None:
        raise UnknownTutor(tutor_id)
    # Read the pending ids first: a session committed after this read stays pending and is evaluated next time.
    pending = list(db.execute(select(TutoringSession.session_id).where(
        TutoringSession.tutor_id == tutor_id, TutoringSession.evaluated_at.is_(None))).scalars())
    longest = max(max(spec.windows_days), spec.patterns.no_show_risk.window_days, spec.patterns.poor_first_session.lookback_days)
    history = load_history(db, tutor_id, since=as_of - timedelta(days=longest), until=as_of)
    windows = {d: window_metrics(history, as_of=as_of, days=d, rules=spec) for d in spec.windows_days}
    short, long = windows[min(windows)], windows[max(windows)]
    tenure = scoring.tenure_days(tutor.onboarding_date, as_of)
    flags = scoring.detect_patterns(history, as_of=as_of, rules=spec)
    score = scoring.churn_score(scoring.components(short, long, tenure_days=tenure, rules=spec), flags, spec)
    tier = scoring.tier(score, long, spec)
    for m in windows.values():
        _upsert_metric(db, tutor_id, m, as_of=as_of, tier=tier, rules_label=rules.version_label, now=now)
    _upsert_prediction(db, tutor_id, score, as_of=as_of, rules=rules, now=now)
    marked = 0
    for i in range(0, len(pending), 900):
        chunk = pending[i:i + 900]
        marked += db.execute(update(TutoringSession).where(TutoringSession.session_id.in_(chunk))
                             .values(evaluated_at=now)).rowcount or 0
    names = {f.name for f in flags}
    facts = {
        "churn_score": score.churn_score, "risk_level": score.risk_level, "tier": tier, "tenure_days": tenure,
        "avg_rating_30d": long.avg_rating, "metrics_below_threshold": len(below_thresholds(long, spec)),
        "first_sessions_recent": scoring.first_sessions_since(history, as_of - scoring.ONE_DAY),
        "flag_poor_first_session": "poor_first_session" in names, "flag_high_reschedule": "high_reschedule" in names,
        "flag_no_show_risk": "no_show_risk" in names,
    }
    return Evaluation(tutor_id=tutor_id, as_of=as_of, score=score, tier=tier, windows=windows, facts=facts, sessions_marked=marked)
