"""PRD §2.1 core metrics over a window, as pure functions of a tutor's session and login history."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from rules.scoring import ScoringRuleSet


@dataclass(frozen=True)
class SessionFact:
    session_id: str
    scheduled_start: datetime
    session_number: int
    rating: float | None  # the student's feedback rating, else the session feed's quick rating
    no_show: bool
    rescheduled: bool
    late_start_minutes: int
    engagement: float | None
    objectives_met: bool | None


@dataclass(frozen=True)
class History:
    sessions: list[SessionFact]  # ordered by scheduled_start
    logins: list[datetime]
    response_minutes: list[float]


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


def load_history(db: Session, tutor_id: str, *, since: datetime, until: datetime) -> History:
    rating = StudentFeedback.overall_rating
    stmt = (
        select(TutoringSession, rating)
        .outerjoin(StudentFeedback, StudentFeedback.session_id == TutoringSession.session_id)
        .where(TutoringSession.tutor_id == tutor_id, TutoringSession.scheduled_start > since,
               TutoringSession.scheduled_start <= until)
        .order_by(TutoringSession.scheduled_start)
    )
    sessions = [
        SessionFact(
            session_id=s.session_id, scheduled_start=s.scheduled_start, session_number=s.session_number,
            rating=float(r) if r is not None else s.student_rating, no_show=s.no_show,
            rescheduled=s.tutor_initiated_reschedule, late_start_minutes=s.late_start_minutes,
            engagement=s.engagement_score, objectives_met=s.learning_objectives_met,
        )
        for s, r in db.execute(stmt)
    ]
    events = db.execute(
        select(TutorEvent.event_type, TutorEvent.event_timestamp, TutorEvent.event_metadata).where(
            TutorEvent.tutor_id == tutor_id, TutorEvent.event_timestamp > since, TutorEvent.event_timestamp <= until,
            TutorEvent.event_type.in_(("login", "message_response")),
        )
    ).all()
    logins = sorted(ts for kind, ts, _ in events if kind == "login")
    responses = [float(meta["response_minutes"]) for kind, _, meta in events
                 if kind == "message_response" and isinstance(meta, dict) and "response_minutes" in meta]
    return History(sessions=sessions, logins=logins, response_minutes=responses)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def in_window(history: History, *, as_of: datetime, days: int, offset_days: int = 0) -> History:
    """The part of ``history`` in (as_of - offset - days, as_of - offset]."""
    end = as_of - timedelta(days=offset_days)
    start = end - timedelta(days=days)
    return History(
        sessions=[s for s in history.sessions if start < s.scheduled_start <= end],
        logins=[t for t in history.logins if start < t <= end],
        response_minutes=history.response_minutes if offset_days == 0 else [],
    )


def window_metrics(history: History, *, as_of: datetime, days: int, rules: ScoringRuleSet) -> WindowMetrics:
    h = in_window(history, as_of=as_of, days=days)
    held = [s for s in h.sessions if not s.no_show]
    rated = [s.rating for s in held if s.rating is not None][-rules.rating_last_n_sessions:]
    first_rated = [s.rating for s in held if s.session_number == 1 and s.rating is not None]
    scheduled = len(h.sessions)
    no_shows = sum(s.no_show for s in h.sessions)
    reschedules = sum(s.rescheduled for s in h.sessions)
    objectives = [s.objectives_met for s in held if s.objectives_met is not None]
    eng = rules.engagement
    login_part = min(1.0, len(h.logins) / (days * eng.expected_logins_per_day))
    # No held session in the window counts as no in-session engagement: inactivity is disengagement.
    session_part = _mean([s.engagement for s in held if s.engagement is not None]) or 0.0
    return WindowMetrics(
        days=days,
        sessions_scheduled=scheduled,
        sessions_completed=len(held),
        avg_rating=_mean(rated),
        first_session_count=sum(1 for s in h.sessions if s.session_number == 1),
        first_session_success_rate=(sum(r >= rules.first_session_success_rating for r in first_rated) / len(first_rated))
        if first_rated else None,
        reschedule_count=reschedules,
        reschedule_rate=reschedules / scheduled if scheduled else None,
        no_show_count=no_shows,
        no_show_rate=no_shows / scheduled if scheduled else None,
        logins=len(h.logins),
        engagement_score=eng.login_weight * login_part + eng.session_weight * session_part,
        learning_objectives_met_pct=sum(objectives) / len(objectives) if objectives else None,
        response_time_avg_minutes=_mean(h.response_minutes),
    )


def below_thresholds(m: WindowMetrics, rules: ScoringRuleSet) -> list[str]:
    """Names of the metrics on the wrong side of their PRD threshold (metrics without data are not counted)."""
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
