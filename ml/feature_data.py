"""Bulk reads for the feature pipeline: a few column queries turned into numpy arrays on a (tutor, day) grid.

Only records strictly before the last as-of instant are read (sessions by scheduled_start, feedback by
submitted_at, events by event_timestamp), so no row can see anything after its own date even by accident;
the per-row point-in-time cut is then exact in ml/windows.py. Never reads the simulation's truth tables or
tutors.behavioral_archetype.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import and_, select
from sqlmodel import Session

from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor

DAY_SECONDS = 86_400


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _number(meta: object, key: str) -> float | None:
    # The product's reading of event metadata (domain/metrics/history.py): numbers only, booleans are not.
    value = meta.get(key) if isinstance(meta, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Grid:
    """Day k of the grid is ``base + k days``; tutors are indexed in ``tutor_ids`` order."""

    base: datetime
    n_days: int
    tutor_ids: list[str]
    onboarding_day: np.ndarray  # grid day index of each tutor's onboarding date (may be negative)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.tutor_ids), self.n_days

    def day_index(self, stamps: Sequence[datetime]) -> np.ndarray:
        base = self.base.timestamp()
        # Core rows skip the ORM's per-row work; a naive value is UTC (UTCDateTime stores naive UTC on SQLite).
        return np.array([int(((ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp() - base) // DAY_SECONDS)
                         for ts in stamps], dtype=np.int64)


@dataclass
class Sessions:
    tutor: np.ndarray
    day: np.ndarray  # grid day of scheduled_start
    number: np.ndarray
    held: np.ndarray  # not a no-show
    no_show: np.ndarray
    rescheduled: np.ndarray
    late: np.ndarray  # late_start_minutes > 0 on a held session
    objectives: np.ndarray  # 1 met, 0 not met, NaN unreported (held sessions only)
    hours: np.ndarray  # duration in hours
    subject: np.ndarray  # subject code per session
    quick: np.ndarray  # the feed's quick rating, NaN if none
    feedback: np.ndarray  # the student's feedback rating, NaN if none (before the last as-of)
    feedback_visible: np.ndarray  # first grid as-of day whose midnight is after submitted_at


@dataclass
class Events:
    tutor: np.ndarray
    day: np.ndarray
    value: np.ndarray  # kind-specific number (prep minutes, reply minutes, hours/week delta); NaN if absent


@dataclass
class FeatureData:
    grid: Grid
    sessions: Sessions
    logins: Events
    responses: Events
    availability: Events
    trainings: list[tuple[int, str, int]]  # (tutor index, module, first grid day the completion is visible)


def load(db: Session, *, first_as_of: date, last_as_of: date, lookback_days: int,
         tutor_ids: Sequence[str] | None) -> FeatureData:
    """Everything the features of as-of days first_as_of..last_as_of need, in four queries."""
    base = midnight(first_as_of) - timedelta(days=lookback_days)
    until = midnight(last_as_of)  # the last as-of instant: nothing at or after it is read
    n_days = (last_as_of - first_as_of).days + lookback_days + 1

    q = select(Tutor.tutor_id, Tutor.onboarding_date).where(Tutor.onboarding_date <= last_as_of)
    if tutor_ids is not None:
        q = q.where(Tutor.tutor_id.in_(list(tutor_ids)))
    tutors = sorted((str(t), d) for t, d in db.execute(q))
    ids = [t for t, _ in tutors]
    index = {t: i for i, t in enumerate(ids)}
    grid = Grid(base=base, n_days=n_days, tutor_ids=ids,
                onboarding_day=np.array([(d - base.date()).days for _, d in tutors], dtype=np.int64))
    return FeatureData(grid=grid, sessions=_sessions(db, grid, index, until), **_events(db, grid, index, until),
                       trainings=_trainings(db, grid, index, until))


def _sessions(db: Session, grid: Grid, index: dict[str, int], until: datetime) -> Sessions:
    s, f = TutoringSession, StudentFeedback
    rows = db.connection().execute(
        select(s.tutor_id, s.scheduled_start, s.session_number, s.no_show, s.tutor_initiated_reschedule,
               s.late_start_minutes, s.learning_objectives_met, s.duration_minutes, s.subject, s.student_rating,
               f.overall_rating, f.submitted_at)
        # Feedback submitted at or after the last as-of instant is invisible to every row.
        .outerjoin(f, and_(f.session_id == s.session_id, f.submitted_at < until))
        .where(s.scheduled_start >= grid.base, s.scheduled_start < until)
    ).all()
    rows = [r for r in rows if r[0] in index]
    cols = list(zip(*rows, strict=True)) if rows else [()] * 12
    tutor = np.array([index[t] for t in cols[0]], dtype=np.int64)
    no_show = np.array(cols[3], dtype=bool)
    held = ~no_show
    subjects: dict[str, int] = {}
    fb_rating = np.array([np.nan if v is None else float(v) for v in cols[10]], dtype=np.float64)
    fb_stamps = [ts for ts in cols[11] if ts is not None]
    fb_visible = np.full(len(rows), np.iinfo(np.int64).max // 4, dtype=np.int64)
    fb_visible[~np.isnan(fb_rating)] = grid.day_index(fb_stamps) + 1
    objectives = np.array([np.nan if v is None else float(v) for v in cols[6]], dtype=np.float64)
    return Sessions(
        tutor=tutor, day=grid.day_index(cols[1]), number=np.array(cols[2], dtype=np.int64), held=held,
        no_show=no_show, rescheduled=np.array(cols[4], dtype=bool),
        late=held & (np.array([v or 0 for v in cols[5]], dtype=np.int64) > 0),
        objectives=np.where(held, objectives, np.nan),
        hours=np.array([v or 0 for v in cols[7]], dtype=np.float64) / 60.0,
        subject=np.array([subjects.setdefault(v, len(subjects)) for v in cols[8]], dtype=np.int64),
        # As in the product, only held sessions carry a rating.
        quick=np.where(held, np.array([np.nan if v is None else float(v) for v in cols[9]], dtype=np.float64), np.nan),
        feedback=np.where(held, fb_rating, np.nan), feedback_visible=fb_visible)


def _events(db: Session, grid: Grid, index: dict[str, int], until: datetime) -> dict[str, Events]:
    e = TutorEvent
    kinds = {"login": ("logins", "session_prep_minutes"), "message_response": ("responses", "response_minutes"),
             "availability_change": ("availability", "hours_per_week_delta")}
    rows = db.connection().execute(select(e.tutor_id, e.event_type, e.event_timestamp, e.event_metadata)
                      .where(e.event_timestamp >= grid.base, e.event_timestamp < until, e.event_type.in_(list(kinds)))
                      ).all()
    out = {}
    for kind, (name, key) in kinds.items():
        mine = [r for r in rows if r[1] == kind and r[0] in index]
        values = [_number(r[3], key) for r in mine]
        out[name] = Events(tutor=np.array([index[r[0]] for r in mine], dtype=np.int64),
                           day=grid.day_index([r[2] for r in mine]),
                           value=np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    return out


def _trainings(db: Session, grid: Grid, index: dict[str, int], until: datetime) -> list[tuple[int, str, int]]:
    """First completion of each module per tutor, over all time before ``until``: completion is cumulative,
    and trainings are rare enough to read without a lower bound."""
    e = TutorEvent
    rows = db.execute(select(e.tutor_id, e.event_timestamp, e.event_metadata)
                      .where(e.event_type == "training_completed", e.event_timestamp < until)).all()
    first: dict[tuple[int, str], datetime] = {}
    for tutor_id, ts, meta in rows:
        if tutor_id not in index:
            continue
        module = str((meta.get("module") if isinstance(meta, dict) else None) or "")
        k = (index[tutor_id], module)
        if k not in first or ts < first[k]:
            first[k] = ts
    days = grid.day_index(list(first.values()))
    return [(t, m, int(d) + 1) for (t, m), d in zip(first, days, strict=True)]
