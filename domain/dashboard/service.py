"""Read-only figures for the ops Home page and /api/v1/kpis: system KPIs and churn alerts.

Every figure is computed "as of" ``now`` so the backfill, the live feed and the tests see one path.
KPI windows are ``days`` long (30 by default), [now - days, now); every change compares with the period before.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from domain.feedback.models import StudentFeedback
from domain.interventions.models import OPEN, Intervention
from domain.scoring.models import ChurnPrediction, RiskLevel, latest_prediction_days
from domain.sessions.models import TutoringSession
from domain.metrics.models import TutorPerformanceMetric
from domain.tutors.models import Tutor, TutorStatus
from domain.tutors.service import subject_match

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
    status: str | None = None  # the case's: Home offers assignment on pending and in-progress tasks only
    assigned_to: str | None = None


@dataclass(frozen=True)
class AlertScope:
    """Home's alert filters beyond the risk level: the tier of the prediction's day (in the rules' tier window)
    and a subject the tutor teaches. None means any."""

    tier: str | None = None
    subject: str | None = None
    tier_window: str = "30day"

    def narrow(self, db: Session, stmt: Any) -> Any:
        """``stmt`` (selecting from ChurnPrediction joined to Tutor) limited to this scope."""
        if self.subject:
            stmt = stmt.where(subject_match(db, self.subject))
        if self.tier:
            m = TutorPerformanceMetric
            stmt = stmt.where(select(1).where(
                m.tutor_id == ChurnPrediction.tutor_id, m.window == self.tier_window,
                m.calculation_date == ChurnPrediction.prediction_date, m.performance_tier == self.tier).exists())
        return stmt


ANY = AlertScope()


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
    """{kpi: (this window's rate, previous window's rate)}.

    One plain range query per window and figure, each on its own index (migration 0013): one grouped scan of both
    windows with an outer join to feedback cost about ten times as much on a 90-day world.
    """
    # Detailed feedback wins over the quick rating in the session feed; one feedback row per session at most.
    rating = func.coalesce(StudentFeedback.overall_rating, TutoringSession.student_rating)

    def in_window(lo: datetime, hi: datetime) -> Any:
        return and_(TutoringSession.scheduled_start >= lo, TutoringSession.scheduled_start < hi)

    def rates(lo: datetime, hi: datetime) -> tuple[float | None, float | None]:
        total, no_shows = db.execute(
            select(func.count(), func.sum(case((TutoringSession.no_show.is_(True), 1), else_=0)))
            .where(in_window(lo, hi))).one()
        rated, good = db.execute(
            select(func.count(rating), func.sum(case((rating >= FIRST_SESSION_SUCCESS_RATING, 1), else_=0)))
            .select_from(TutoringSession)
            .outerjoin(StudentFeedback, StudentFeedback.session_id == TutoringSession.session_id)
            .where(TutoringSession.session_number == 1, in_window(lo, hi))).one()
        return ((good or 0) / rated if rated else None), ((no_shows or 0) / total if total else None)

    current, previous = rates(now - window, now), rates(now - 2 * window, now - window)
    return {"first_session_success": (current[0], previous[0]), "no_show_rate": (current[1], previous[1])}


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


def risk_counts(db: Session, *, now: datetime, levels: Iterable[RiskLevel] = tuple(RiskLevel),
                scope: AlertScope = ANY) -> dict[str, int]:
    """Active tutors per risk level of their latest prediction, e.g. {"Critical": 3, "High": 9}."""
    stmt = scope.narrow(db, (
        _latest_predictions(now, [ChurnPrediction.risk_level, func.count()])
        .where(ChurnPrediction.risk_level.in_(list(levels)))
        .group_by(ChurnPrediction.risk_level)
    ))
    return {str(level): count for level, count in db.execute(stmt)}


def critical_alerts(db: Session, *, now: datetime, limit: int = 20,
                    levels: Sequence[RiskLevel] = (RiskLevel.critical,), scope: AlertScope = ANY) -> list[Alert]:
    """Active tutors whose latest prediction is at one of ``levels``, highest churn score first."""
    stmt = scope.narrow(db, (
        _latest_predictions(now, [ChurnPrediction, Tutor.name])
        .where(ChurnPrediction.risk_level.in_(list(levels)))
        .order_by(ChurnPrediction.churn_score.desc(), ChurnPrediction.tutor_id)
        .limit(limit)
    ))
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
            status=row.status, assigned_to=row.assigned_to,
        ))
    return out


def risk_trend(db: Session, *, now: datetime, days: int = WINDOW.days,
               scope: AlertScope = ANY) -> list[tuple[date, dict[str, int]]]:
    """Tutors per risk level on each of the last ``days`` days, oldest first: every prediction of the day (a tutor
    who churned since still counts on the days they were scored). Days without predictions are left out."""
    first = now.date() - timedelta(days=days - 1)
    stmt = scope.narrow(db, (
        select(ChurnPrediction.prediction_date, ChurnPrediction.risk_level, func.count())
        .select_from(ChurnPrediction).join(Tutor, Tutor.tutor_id == ChurnPrediction.tutor_id)
        .where(ChurnPrediction.prediction_date >= first, ChurnPrediction.prediction_date <= now.date())
        .group_by(ChurnPrediction.prediction_date, ChurnPrediction.risk_level)
    ))
    by_day: dict[date, dict[str, int]] = {}
    for day, level, count in db.execute(stmt):
        by_day.setdefault(day, {})[str(level)] = count
    return sorted(by_day.items())


def known_subjects(db: Session) -> list[str]:
    """Every subject some active tutor lists, sorted: Home's subject filter offers these."""
    found: set[str] = set()
    for subjects in db.execute(select(Tutor.subjects).where(Tutor.status == TutorStatus.active)).scalars():
        found.update(s for s in subjects or () if isinstance(s, str))
    return sorted(found)


def open_task_load(db: Session) -> dict[str, int]:
    """Open human tasks per assignee: Home suggests the least-loaded people-ops teammate for one-click assignment."""
    stmt = (select(Intervention.assigned_to, func.count())
            .where(Intervention.status.in_(OPEN), Intervention.kind == "human", Intervention.assigned_to.is_not(None))
            .group_by(Intervention.assigned_to))
    return {user: count for user, count in db.execute(stmt)}


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
