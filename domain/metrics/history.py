"""A tutor's history as plain facts, read point-in-time: nothing at or after ``until`` is visible.

One reader serves the per-session evaluation (one tutor) and the daily rollup (every tutor in two queries), so
both compute from exactly the same facts. Columns are selected, not ORM entities: a 90-day history is ~1,000
sessions per tutor and entity loading would dominate the evaluation's time budget.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlmodel import Session

from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession

EVENT_TYPES = ("login", "message_response", "training_completed", "availability_change")


@dataclass(frozen=True)
class SessionFact:
    session_id: str
    scheduled_start: datetime
    session_number: int
    rating: float | None  # the student's feedback rating if submitted before the evaluation, else the feed's quick rating
    no_show: bool
    rescheduled: bool
    late_start_minutes: int
    engagement: float | None
    objectives_met: bool | None
    subject: str = ""
    session_type: str = "1-on-1"
    technical_issues: bool = False
    # The student's first-session answer "would you work with this tutor again?" was Probably not or No.
    not_again: bool = False


@dataclass(frozen=True)
class History:
    sessions: list[SessionFact]  # ordered by scheduled_start
    logins: list[datetime]  # ordered
    responses: list[tuple[datetime, float]] = field(default_factory=list)  # (when, reply minutes)
    login_prep: list[tuple[datetime, float]] = field(default_factory=list)  # (login time, prep minutes)
    trainings: list[tuple[datetime, str]] = field(default_factory=list)  # (when, module)
    availability_changes: list[tuple[datetime, float]] = field(default_factory=list)  # (when, hours/week delta)

    @property
    def response_minutes(self) -> list[float]:
        return [m for _, m in self.responses]


def _session_stmt(since: datetime, until: datetime):  # noqa: ANN202 - a SQLAlchemy Select
    s, f = TutoringSession, StudentFeedback
    return (
        select(s.tutor_id, s.session_id, s.scheduled_start, s.session_number, s.student_rating, f.overall_rating,
               s.no_show, s.tutor_initiated_reschedule, s.late_start_minutes, s.engagement_score,
               s.learning_objectives_met, s.subject, s.session_type, s.technical_issues, f.would_recommend)
        # Feedback submitted after the evaluation time did not exist yet at that time.
        .outerjoin(f, and_(f.session_id == s.session_id, f.submitted_at < until))
        .where(s.scheduled_start >= since, s.scheduled_start < until)
        .order_by(s.tutor_id, s.scheduled_start, s.session_id)
    )


def _event_stmt(since: datetime, until: datetime):  # noqa: ANN202
    e = TutorEvent
    return (
        select(e.tutor_id, e.event_type, e.event_timestamp, e.event_metadata)
        .where(e.event_timestamp >= since, e.event_timestamp < until, e.event_type.in_(EVENT_TYPES))
        .order_by(e.tutor_id, e.event_timestamp)
    )


def _number(meta: object, key: str) -> float | None:
    value = meta.get(key) if isinstance(meta, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class _Builder:
    def __init__(self) -> None:
        self.sessions: list[SessionFact] = []
        self.logins: list[datetime] = []
        self.prep: list[tuple[datetime, float]] = []
        self.responses: list[tuple[datetime, float]] = []
        self.trainings: list[tuple[datetime, str]] = []
        self.availability: list[tuple[datetime, float]] = []

    def add_session(self, row: tuple) -> None:
        (_, sid, start, number, quick, rated, no_show, resched, late, eng, obj, subject, stype, tech, again) = row
        self.sessions.append(SessionFact(
            session_id=sid, scheduled_start=start, session_number=number,
            rating=float(rated) if rated is not None else quick, no_show=bool(no_show), rescheduled=bool(resched),
            late_start_minutes=late or 0, engagement=eng, objectives_met=obj, subject=subject, session_type=stype,
            technical_issues=bool(tech), not_again=again is False))

    def add_event(self, kind: str, ts: datetime, meta: object) -> None:
        if kind == "login":
            self.logins.append(ts)
            prep = _number(meta, "session_prep_minutes")
            if prep is not None:
                self.prep.append((ts, prep))
        elif kind == "message_response":
            minutes = _number(meta, "response_minutes")
            if minutes is not None:
                self.responses.append((ts, minutes))
        elif kind == "training_completed":
            module = meta.get("module") if isinstance(meta, dict) else None
            self.trainings.append((ts, str(module or "")))
        elif kind == "availability_change":
            self.availability.append((ts, _number(meta, "hours_per_week_delta") or 0.0))

    def build(self) -> History:
        return History(sessions=self.sessions, logins=self.logins, responses=self.responses, login_prep=self.prep,
                       trainings=self.trainings, availability_changes=self.availability)


def load_history(db: Session, tutor_id: str, *, since: datetime, until: datetime) -> History:
    """Everything about one tutor in [since, until)."""
    b = _Builder()
    for row in db.execute(_session_stmt(since, until).where(TutoringSession.tutor_id == tutor_id)):
        b.add_session(tuple(row))
    for _, kind, ts, meta in db.execute(_event_stmt(since, until).where(TutorEvent.tutor_id == tutor_id)):
        b.add_event(kind, ts, meta)
    return b.build()


def load_histories(db: Session, tutor_ids: Iterable[str], *, since: datetime, until: datetime) -> dict[str, History]:
    """Every listed tutor's history in [since, until), in two queries (a tutor with nothing gets an empty one)."""
    wanted = set(tutor_ids)
    builders: dict[str, _Builder] = defaultdict(_Builder)
    for row in db.execute(_session_stmt(since, until)):
        if row[0] in wanted:
            builders[row[0]].add_session(tuple(row))
    for tutor_id, kind, ts, meta in db.execute(_event_stmt(since, until)):
        if tutor_id in wanted:
            builders[tutor_id].add_event(kind, ts, meta)
    return {t: builders[t].build() if t in builders else _Builder().build() for t in wanted}


def in_window(history: History, *, as_of: datetime, days: int, offset_days: int = 0) -> History:
    """The part of ``history`` in [as_of - offset - days, as_of - offset): a window ending at midnight UTC holds
    exactly its whole days."""
    end = as_of - timedelta(days=offset_days)
    start = end - timedelta(days=days)

    def keep(ts: datetime) -> bool:
        return start <= ts < end

    return History(
        sessions=[s for s in history.sessions if keep(s.scheduled_start)],
        logins=[t for t in history.logins if keep(t)],
        responses=[(t, m) for t, m in history.responses if keep(t)],
        login_prep=[(t, p) for t, p in history.login_prep if keep(t)],
        trainings=[(t, m) for t, m in history.trainings if keep(t)],
        availability_changes=[(t, h) for t, h in history.availability_changes if keep(t)],
    )

