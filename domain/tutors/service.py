"""Read queries behind /api/v1/tutors: the tutor list with each tutor's latest score, metrics history, the
churn score explained, and tier history. Nothing here writes.

A tutor's "latest" figures all come from one UTC day, the day of their latest churn prediction: the evaluation
writes that prediction and the day's metrics rows together, so the tier and performance index shown next to a
score are the ones computed with it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.sql import Select
from sqlmodel import Session

from domain.metrics.models import TutorPerformanceMetric
from domain.scoring import service as scoring
from domain.scoring.models import ChurnPrediction, latest_prediction_days
from domain.tiers.models import TierHistory
from domain.tutors.models import Tutor
from core.config import Settings
from rules.scoring import COMPONENTS, active_scoring_rules

TIER_HISTORY_ON_SCORE = 12
SORTS = ("-churn_score", "churn_score", "tutor_id", "-tutor_id", "-performance_index", "performance_index")


class NotFound(LookupError):
    """The tutor, or the row asked for, does not exist; the message says which, for the 404 body."""


@dataclass(frozen=True)
class TutorFilters:
    risk_levels: Sequence[str] = ()
    tiers: Sequence[str] = ()
    subject: str | None = None
    statuses: Sequence[str] = ()
    id_prefix: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int


@dataclass(frozen=True)
class ScoreView:
    prediction: ChurnPrediction
    components: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    explanation: list[str]
    tier: str | None
    performance_index: float | None
    tier_history: list[TierHistory] = field(default_factory=list)
    model: dict[str, Any] | None = None  # the ML model's score of the same day, when it scored the tutor
    score_source: str = "rules"  # which score the day's interventions were decided on
    score_source_reason: str | None = None


def tier_window(settings: Settings) -> str:
    """The metrics window whose row carries the tier and performance index, as the active rules set it."""
    return f"{active_scoring_rules(settings.rules_dir).spec.tiers.window_days}day"


def require_tutor(db: Session, tutor_id: str) -> Tutor:
    tutor = db.get(Tutor, tutor_id)
    if tutor is None:
        raise NotFound(f"No tutor {tutor_id}.")
    return tutor


# --- the list ---------------------------------------------------------------------------------------------

def subject_match(db: Session, subject: str) -> Any:
    """Tutors whose subjects JSON list holds ``subject`` (case-insensitive), on either database.

    A LIKE over the JSON text would also match substrings ("Math" in "Mathematics") and escaped characters, so
    this unnests the list: json_each on SQLite, json_array_elements_text on PostgreSQL.
    """
    if db.get_bind().dialect.name == "postgresql":
        items = func.json_array_elements_text(Tutor.subjects).table_valued("value").render_derived()
    else:
        items = func.json_each(Tutor.subjects).table_valued("value")
    return select(1).select_from(items).where(func.lower(items.c.value) == subject.lower()).exists()


def _list_query(db: Session, f: TutorFilters, tier_window: str) -> Select:
    p, m, t = ChurnPrediction, TutorPerformanceMetric, Tutor
    latest = latest_prediction_days()
    # Outer joins: a tutor never evaluated is still listed, with no score, unless a score filter excludes them.
    stmt = (
        select(t.tutor_id, t.name, t.status, t.subjects, t.onboarding_date, p.churn_score, p.risk_level,
               p.prediction_date, m.performance_tier, m.performance_index, p.model_churn_score, p.model_risk_level)
        .select_from(t)
        .outerjoin(latest, latest.c.tutor_id == t.tutor_id)
        .outerjoin(p, and_(p.tutor_id == t.tutor_id, p.prediction_date == latest.c.day))
        .outerjoin(m, and_(m.tutor_id == t.tutor_id, m.window == tier_window, m.calculation_date == latest.c.day))
    )
    if f.risk_levels:
        stmt = stmt.where(p.risk_level.in_(list(f.risk_levels)))
    if f.tiers:
        stmt = stmt.where(m.performance_tier.in_(list(f.tiers)))
    if f.statuses:
        stmt = stmt.where(t.status.in_(list(f.statuses)))
    if f.subject:
        stmt = stmt.where(subject_match(db, f.subject))
    if f.id_prefix:
        # substr, not LIKE: no wildcard escaping, and the same case-sensitive match on both databases.
        stmt = stmt.where(func.substr(t.tutor_id, 1, len(f.id_prefix)) == f.id_prefix)
    return stmt


def _order(sort: str) -> list[Any]:
    column = {"churn_score": ChurnPrediction.churn_score, "tutor_id": Tutor.tutor_id,
              "performance_index": TutorPerformanceMetric.performance_index}[sort.lstrip("-")]
    ordered = column.desc() if sort.startswith("-") else column.asc()
    # Unscored tutors last in either direction (the databases disagree on where NULLs sort); the id keeps
    # pages stable when scores tie.
    return [column.is_(None), ordered, Tutor.tutor_id]


def list_tutors(db: Session, filters: TutorFilters, *, tier_window: str, sort: str = "-churn_score", limit: int = 50,
                offset: int = 0) -> Page:
    """``tier_window``: the metrics window whose row carries the tier and index (the rules' tiers.window_days)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}")
    stmt = _list_query(db, filters, tier_window)
    total = db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(*_order(sort)).limit(limit).offset(offset)).mappings().all()
    return Page(items=[dict(r) for r in rows], total=total)


# --- metrics ----------------------------------------------------------------------------------------------

def metrics_history(db: Session, tutor_id: str, window: str, *, since: date | None = None, until: date | None = None,
                    limit: int = 50, offset: int = 0) -> tuple[TutorPerformanceMetric | None, Page]:
    """(the newest row of the window whatever the date filters, the filtered daily rows newest first)."""
    require_tutor(db, tutor_id)
    m = TutorPerformanceMetric
    base = select(m).where(m.tutor_id == tutor_id, m.window == window)
    latest = db.execute(base.order_by(m.calculation_date.desc()).limit(1)).scalar_one_or_none()
    if since:
        base = base.where(m.calculation_date >= since)
    if until:
        base = base.where(m.calculation_date <= until)
    total = db.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = db.execute(base.order_by(m.calculation_date.desc()).limit(limit).offset(offset)).scalars().all()
    return latest, Page(items=list(rows), total=total)


# --- churn score ------------------------------------------------------------------------------------------

def _components(factors: dict[str, Any]) -> list[dict[str, Any]]:
    """The weighted components in the rules' order; pattern bumps are left to the flags, which say them in words."""
    named = {k: v for k, v in factors.items() if not k.startswith("pattern_") and isinstance(v, dict)}
    order = [c for c in COMPONENTS if c in named] + sorted(set(named) - set(COMPONENTS))
    return [{"name": name, "label": scoring.LABELS.get(name, name.replace("_", " ")), "score": named[name].get("score"),
             "weight": named[name].get("weight"), "contribution": named[name].get("contribution")} for name in order]


def public_evidence(evidence: Any) -> dict[str, Any]:
    """A flag's evidence without student identifiers.

    Evidence is free-form JSON each detector fills in; today it holds session ids and counts, and this keeps a
    future detector's student ids or names from reaching API clients by accident.
    """
    if not isinstance(evidence, dict):
        return {}
    return {k: v for k, v in evidence.items() if "student" not in k.lower()}


def _flags(flags: list[Any]) -> list[dict[str, Any]]:
    return [{"name": f.get("name"), "triggered_at": f.get("triggered_at"), "bump": f.get("bump"),
             "summary": f.get("summary"), "evidence": public_evidence(f.get("evidence"))}
            for f in flags or [] if isinstance(f, dict) and f.get("name")]


def _explainable(factors: dict[str, Any]) -> dict[str, Any]:
    # explain() reads f["contribution"]; rows written by older code or by hand may lack it.
    return {k: v for k, v in factors.items() if isinstance(v, dict) and isinstance(v.get("contribution"), int | float)}


def score(db: Session, tutor_id: str, *, tier_window: str, on: date | None = None) -> ScoreView:
    require_tutor(db, tutor_id)
    p = ChurnPrediction
    stmt = select(p).where(p.tutor_id == tutor_id)
    stmt = stmt.where(p.prediction_date == on) if on else stmt.order_by(p.prediction_date.desc()).limit(1)
    prediction = db.execute(stmt).scalar_one_or_none()
    if prediction is None:
        raise NotFound(f"No churn prediction for {tutor_id} on {on.isoformat()}." if on
                       else f"Tutor {tutor_id} has not been evaluated yet: no churn prediction.")
    m = TutorPerformanceMetric
    tier_row = db.execute(select(m.performance_tier, m.performance_index).where(
        m.tutor_id == tutor_id, m.window == tier_window, m.calculation_date == prediction.prediction_date)).first()
    # With ?date= the history stops at that day, so the view is the one ops would have seen then.
    end = day_start(prediction.prediction_date + timedelta(days=1)) if on else None
    history = tier_history(db, tutor_id, until=end, limit=TIER_HISTORY_ON_SCORE, check=False).items
    factors = prediction.contributing_factors or {}
    return ScoreView(
        prediction=prediction, components=_components(factors), flags=_flags(prediction.flags),
        explanation=scoring.explain(_explainable(factors), prediction.churn_score),
        tier=tier_row.performance_tier if tier_row else None,
        performance_index=tier_row.performance_index if tier_row else None, tier_history=history,
        model=model_score(prediction), score_source=(prediction.facts or {}).get("score_source", "rules"),
        score_source_reason=(prediction.facts or {}).get("score_source_reason"),
    )


def model_score(p: ChurnPrediction) -> dict[str, Any] | None:
    """The model's part of a prediction row, or None when the model has not scored it. Staff-only: tutors
    never see risk or its reasons (nothing under /me reads this)."""
    if p.ml_model_version is None or p.model_churn_score is None:
        return None
    return {"ml_model_version": p.ml_model_version, "churn_score": p.model_churn_score, "risk_level": p.model_risk_level,
            "window_1day_probability": p.window_1day_probability, "window_7day_probability": p.window_7day_probability,
            "window_30day_probability": p.window_30day_probability,
            "window_90day_probability": p.window_90day_probability,
            "factors": [f for f in p.model_factors or [] if isinstance(f, dict) and f.get("text")]}


# --- tiers ------------------------------------------------------------------------------------------------

def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def tier_history(db: Session, tutor_id: str, *, since: datetime | None = None, until: datetime | None = None,
                 limit: int = 50, offset: int = 0, check: bool = True) -> Page:
    """Tier rows newest first; ``until`` is exclusive."""
    if check:
        require_tutor(db, tutor_id)
    h = TierHistory
    base = select(h).where(h.tutor_id == tutor_id)
    if since:
        base = base.where(h.assigned_at >= since)
    if until:
        base = base.where(h.assigned_at < until)
    total = db.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    newest_first = base.order_by(h.assigned_at.desc(), h.tier_history_id.desc())
    rows = db.execute(newest_first.limit(limit).offset(offset)).scalars()
    return Page(items=list(rows), total=total)
