"""Writes an assessment: metrics rows per window and day, the day's churn prediction, tier history.

Rows are keyed by (tutor, window, UTC day) and (tutor, day) and updated in place, so re-evaluating is idempotent.
The daily rollup prefetches a day's rows for every tutor in one query instead of one lookup per row.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from domain.evaluation.assess import Assessment
from domain.metrics.models import TutorPerformanceMetric
from domain.metrics.service import WindowMetrics
from domain.model_scoring.drive import driving_facts
from domain.scoring.models import ChurnPrediction
from rules.scoring import ScoringRules

# Every computed metric the table has a column of the same name for (window length and the shrinkage counts are
# not stored; `logins` is stored as login_count): adding a metric to both is all it takes to persist it.
_METRIC_FIELDS = tuple(f.name for f in fields(WindowMetrics) if f.name in TutorPerformanceMetric.model_fields)


def _round(v: object) -> object:
    return round(v, 6) if isinstance(v, float) else v


@dataclass
class DayRows:
    """The rows already stored for one UTC day, by key; filled by ``prefetch`` or lazily per tutor."""

    day: date
    metrics: dict[tuple[str, str], TutorPerformanceMetric] = field(default_factory=dict)
    predictions: dict[str, ChurnPrediction] = field(default_factory=dict)


def prefetch(db: Session, day: date, tutor_ids: Iterable[str] | None = None) -> DayRows:
    m, p = TutorPerformanceMetric, ChurnPrediction
    ms = select(m).where(m.calculation_date == day)
    ps = select(p).where(p.prediction_date == day)
    if tutor_ids is not None:
        ids = list(tutor_ids)
        ms, ps = ms.where(m.tutor_id.in_(ids)), ps.where(p.tutor_id.in_(ids))
    rows = DayRows(day=day)
    rows.metrics = {(r.tutor_id, r.window): r for r in db.execute(ms).scalars()}
    rows.predictions = {r.tutor_id: r for r in db.execute(ps).scalars()}
    return rows


def _metric_row(db: Session, rows: DayRows, tutor_id: str, m: WindowMetrics, *, as_of: datetime, now: datetime) -> TutorPerformanceMetric:
    key = (tutor_id, f"{m.days}day")
    row = rows.metrics.get(key)
    if row is None:
        row = TutorPerformanceMetric(tutor_id=tutor_id, window=key[1], calculation_date=rows.day, as_of=as_of, created_at=now)
        db.add(row)
        rows.metrics[key] = row
    for name in _METRIC_FIELDS:
        setattr(row, name, _round(getattr(m, name)))
    row.login_count = m.logins
    row.as_of, row.updated_at = as_of, now
    return row


def save(db: Session, a: Assessment, rows: DayRows, *, rules: ScoringRules, now: datetime) -> dict[str, Any]:
    """Stores the assessment; returns the facts the intervention rules read (the assessment's own, unless the
    rules file lets the model's score of the day drive: domain/model_scoring/drive.py). The row's model columns
    are the model scoring's and are left as they are."""
    for m in a.windows.values():
        row = _metric_row(db, rows, a.tutor_id, m, as_of=a.as_of, now=now)
        row.performance_tier, row.rules_version = a.tier.tier, rules.version_label
        row.performance_index = a.tier.index if m.days == rules.spec.tiers.window_days else None
    pred = rows.predictions.get(a.tutor_id)
    if pred is None:
        pred = ChurnPrediction(tutor_id=a.tutor_id, prediction_date=rows.day, as_of=a.as_of, churn_score=0,
                               risk_level="Low", model_version="", created_at=now)
        db.add(pred)
        rows.predictions[a.tutor_id] = pred
    pred.as_of, pred.updated_at = a.as_of, now
    pred.churn_score, pred.risk_level = a.score.churn_score, a.score.risk_level
    pred.contributing_factors = a.score.contributing_factors(rules.spec)
    pred.flags = [f.as_dict() for f in a.score.flags]
    pred.facts = driving_facts(dict(a.facts), pred, rules.spec)
    pred.model_version = f"rules:{rules.version_label}"
    pred.rules_version, pred.rules_hash = rules.version_label, rules.hash
    return pred.facts
