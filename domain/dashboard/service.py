"""Read-only figures for the ops Home page and /api/v1/kpis: system KPIs and churn alerts.

Every figure is computed "as of" ``now`` so the backfill, the live feed and the tests see one path.
KPI windows are ``days`` long (30 by default), [now - days, now); every change compares with the period before.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from domain.feedback.models import StudentFeedback
from domain.interventions.models import OPEN, Intervention
from domain.scoring.models import ChurnPrediction, RiskLevel, latest_prediction_days
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor, TutorStatus

WINDOW = timedelta(days=30)
AT_RISK = (RiskLevel.high, RiskLevel.critical)
# The PRD's definition of a successful first session: the student rated it 4 or 5.
FIRST_SESSION_SUCCESS_RATING = 4
_ACRONYMS = {"pip": "PIP", "sla": "SLA"}


class Kpi(BaseModel):
    key: str
    label: str
    value: str
    raw: float | None  # None when the window holds nothing to measure
    change: str | None  # formatted; rates change in percentage points
    change_raw: float | None
    good: bool | None  # is the change in the good direction; None when unchanged or not comparable
    note: str  # what the change compares with, shown as a tooltip


class RecommendedAction(BaseModel):
    label: str
    intervention_id: str | None = None
    intervention_type: str | None = None
    due_date: datetime | None = None
    escalated: bool = False


class Alert(BaseModel):
    tutor_id: str
    name: str
    churn_score: float
    risk_level: str
    prediction_date: date
    reasons: list[str]
    actions: list[RecommendedAction]


def title_words(name: str) -> str:
    """'retention_interview' -> 'Retention Interview'; 'pip_check_in' -> 'PIP Check In'."""
    return " ".join(_ACRONYMS.get(w.lower(), w.capitalize()) for w in name.replace("-", "_").split("_") if w)


def _plain_words(name: str) -> str:
    return name.replace("_", " ").strip()


# --- KPIs -------------------------------------------------------------------------------------------------

def kpis(db: Session, *, now: datetime, days: int = WINDOW.days) -> list[Kpi]:
    window = timedelta(days=days)
    start = now - window
    active, active_before = _tutor_counts(db, window_start=start)
    risk_now = sum(risk_counts(db, now=now, levels=AT_RISK).values())
    risk_before = sum(risk_counts(db, now=start, levels=AT_RISK).values())
    rates = _session_rates(db, now=now, window=window)
    share = f" ({risk_now / active:.1%})" if active else ""
    return [
        _count_kpi("total_tutors", "Total tutors", active, active_before, up_is_good=True,
                   note=f"vs. tutors who had joined {days} days ago and have not churned since"),
        _count_kpi("at_risk_tutors", "At-risk tutors", risk_now, risk_before, up_is_good=False,
                   value=f"{risk_now}{share}",
                   note=f"latest churn prediction High or Critical; vs. the latest predictions {days} days ago"),
        _rate_kpi("first_session_success", "First-session success", *rates["first_session_success"],
                  up_is_good=True, digits=0,
                  note=f"rated first sessions scored 4 or 5; vs. the previous {days} days"),
        _rate_kpi("no_show_rate", "No-show rate", *rates["no_show_rate"], up_is_good=False, digits=1,
                  note=f"no-shows among all sessions; vs. the previous {days} days"),
    ]


def _tutor_counts(db: Session, *, window_start: datetime) -> tuple[int, int]:
    """Active tutors now, and an estimate of the active count at the window's start.

    Tutors carry no status history, so "active at the window's start" is approximated as tutors onboarded
    before the window who are not churned now. Tutors who churned inside the window drop out of both sides, so the
    change mostly reflects onboarding (and tutors who went inactive), not churn; churn shows in At-risk.
    """
    active = db.execute(select(func.count()).select_from(Tutor).where(Tutor.status == TutorStatus.active)).scalar_one()
    before = db.execute(
        select(func.count()).select_from(Tutor)
        .where(Tutor.onboarding_date < window_start.date(), Tutor.status != TutorStatus.churned)
    ).scalar_one()
    return active, before


def _session_rates(db: Session, *, now: datetime,
                   window: timedelta = WINDOW) -> dict[str, tuple[float | None, float | None]]:
    """{kpi: (this window's rate, previous window's rate)} from one scan over the last two windows of sessions."""
    start, previous_start = now - window, now - 2 * window
    # Detailed feedback wins over the quick rating in the session feed; one feedback row per session at most.
    rating = func.coalesce(StudentFeedback.overall_rating, TutoringSession.student_rating)
    first = TutoringSession.session_number == 1
    period = case((TutoringSession.scheduled_start >= start, "current"), else_="previous").label("period")

    def tally(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    stmt = (
        select(
            period,
            func.count(),
            tally(TutoringSession.no_show.is_(True)),
            tally(and_(first, rating.is_not(None))),
            tally(and_(first, rating >= FIRST_SESSION_SUCCESS_RATING)),
        )
        .select_from(TutoringSession)
        .outerjoin(StudentFeedback, StudentFeedback.session_id == TutoringSession.session_id)
        .where(TutoringSession.scheduled_start >= previous_start, TutoringSession.scheduled_start < now)
        .group_by(period)
    )
    by_period = {row[0]: row[1:] for row in db.execute(stmt)}

    def ratio(part: int | None, whole: int | None) -> float | None:
        return (part or 0) / whole if whole else None

    out: dict[str, list[float | None]] = {"first_session_success": [], "no_show_rate": []}
    for name in ("current", "previous"):
        total, no_shows, rated_first, good_first = by_period.get(name, (0, 0, 0, 0))
        out["first_session_success"].append(ratio(good_first, rated_first))
        out["no_show_rate"].append(ratio(no_shows, total))
    return {k: (v[0], v[1]) for k, v in out.items()}


def _count_kpi(key: str, label: str, current: int, previous: int, *, up_is_good: bool, note: str,
               value: str | None = None) -> Kpi:
    delta = current - previous
    return Kpi(key=key, label=label, value=value or str(current), raw=float(current),
               change=f"{delta:+d}" if delta else "no change", change_raw=float(delta),
               good=None if delta == 0 else (delta > 0) == up_is_good, note=note)


def _rate_kpi(key: str, label: str, current: float | None, previous: float | None, *, up_is_good: bool,
              digits: int, note: str) -> Kpi:
    value = "—" if current is None else f"{current:.{digits}%}"
    if current is None or previous is None:
        return Kpi(key=key, label=label, value=value, raw=current, change=None, change_raw=None, good=None, note=note)
    points = round((current - previous) * 100, 1)
    change = f"{points:+.1f} pts" if points else "no change"
    return Kpi(key=key, label=label, value=value, raw=current, change=change, change_raw=points,
               good=None if points == 0 else (points > 0) == up_is_good, note=note)


# --- Churn risk -------------------------------------------------------------------------------------------

def _latest_predictions(now: datetime, columns: Sequence[Any]) -> Any:
    """SELECT columns FROM each active tutor's latest prediction made on or before now's UTC day."""
    latest = latest_prediction_days(now.date())
    return (
        select(*columns)
        .select_from(ChurnPrediction)
        .join(latest, and_(ChurnPrediction.tutor_id == latest.c.tutor_id, ChurnPrediction.prediction_date == latest.c.day))
        .join(Tutor, Tutor.tutor_id == ChurnPrediction.tutor_id)
        # A churned tutor's last prediction is history, not a risk anyone can act on.
        .where(Tutor.status == TutorStatus.active)
    )


def risk_counts(db: Session, *, now: datetime, levels: Iterable[RiskLevel] = tuple(RiskLevel)) -> dict[str, int]:
    """Active tutors per risk level of their latest prediction, e.g. {"Critical": 3, "High": 9}."""
    stmt = (
        _latest_predictions(now, [ChurnPrediction.risk_level, func.count()])
        .where(ChurnPrediction.risk_level.in_(list(levels)))
        .group_by(ChurnPrediction.risk_level)
    )
    return {str(level): count for level, count in db.execute(stmt)}


def critical_alerts(db: Session, *, now: datetime, limit: int = 20,
                    levels: Sequence[RiskLevel] = (RiskLevel.critical,)) -> list[Alert]:
    """Active tutors whose latest prediction is at one of ``levels``, highest churn score first."""
    stmt = (
        _latest_predictions(now, [ChurnPrediction, Tutor.name])
        .where(ChurnPrediction.risk_level.in_(list(levels)))
        .order_by(ChurnPrediction.churn_score.desc(), ChurnPrediction.tutor_id)
        .limit(limit)
    )
    rows = db.execute(stmt).all()
    actions = _open_actions(db, [p.tutor_id for p, _name in rows])
    return [
        Alert(tutor_id=p.tutor_id, name=name, churn_score=p.churn_score, risk_level=str(p.risk_level),
              prediction_date=p.prediction_date, reasons=explain(p.flags, p.contributing_factors, p.churn_score),
              actions=actions.get(p.tutor_id) or [RecommendedAction(label="Review profile")])
        for p, name in rows
    ]


def _open_actions(db: Session, tutor_ids: list[str]) -> dict[str, list[RecommendedAction]]:
    if not tutor_ids:
        return {}
    stmt = (
        select(Intervention)
        .where(Intervention.tutor_id.in_(tutor_ids), Intervention.status.in_(OPEN), Intervention.kind == "human")
        .order_by(Intervention.escalated_at.is_(None), Intervention.due_date, Intervention.intervention_id)
    )
    out: dict[str, list[RecommendedAction]] = {}
    for row in db.execute(stmt).scalars():
        out.setdefault(row.tutor_id, []).append(RecommendedAction(
            label=title_words(row.intervention_type), intervention_id=row.intervention_id,
            intervention_type=row.intervention_type, due_date=row.due_date, escalated=row.escalated_at is not None,
        ))
    return out


def explain(flags: list[dict[str, Any]] | None, factors: dict[str, Any] | None, score: float,
            *, top: int = 2) -> list[str]:
    """Plain-words reasons: each flag's summary, then the ``top`` largest component contributions."""
    reasons = []
    for flag in flags or []:
        if not isinstance(flag, dict) or not flag.get("name"):
            continue
        name = _plain_words(str(flag["name"])).capitalize()
        reasons.append(f"{name}: {flag['summary']}" if flag.get("summary") else name)
    contributions = []
    for name, factor in (factors or {}).items():
        if name.startswith("pattern_"):
            continue  # the flags above already say it, in words
        # The documented shape is {"score", "contribution"}; a bare number (the PRD's example) is a contribution.
        value = factor.get("contribution") if isinstance(factor, dict) else factor
        if isinstance(value, int | float) and value > 0:
            contributions.append((float(value), name))
    for value, name in sorted(contributions, key=lambda c: (-c[0], c[1]))[:top]:
        reasons.append(f"{_plain_words(name)} contributed {value:.0f} of {score:.0f}")
    return reasons
