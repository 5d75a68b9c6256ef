"""Reads for the realism report: stored rows only, grouped in SQL, handed over as numpy arrays.

No query returns one row per session: a 90-day, 270k-session database comes back as a few tens of
thousands of grouped rows (per day x hour, per tutor x day) plus the first sessions and reschedule events.
Timestamps travel as UTC epoch seconds so day, hour and weekday arithmetic is the same on SQLite and
PostgreSQL (SQLAlchemy renders extract('epoch') as strftime('%s') on the one and EXTRACT(EPOCH) on the other).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor
from synth.truth import TruthTutor

DAY_S = 86_400
_S = TutoringSession.__table__.c
_F = StudentFeedback.__table__.c
_E = TutorEvent.__table__.c
_T = Tutor.__table__.c
_TT = TruthTutor.__table__.c


def epoch_s(col: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast(sa.extract("epoch", col), sa.BigInteger)


def weekday(day: np.ndarray) -> np.ndarray:
    """Monday = 0 for a day index counted from 1970-01-01 (a Thursday)."""
    return (day + 3) % 7


def to_ts(value: datetime | date) -> float:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.timestamp()


@dataclass
class ReportData:
    start: datetime
    end: datetime  # the last stored session start inside the window
    full_days: np.ndarray  # day indices wholly inside [start, end]
    hourly: dict[str, np.ndarray]  # day, hour, n, no_show
    tutor_day: dict[str, np.ndarray]  # tutor, day, n, no_show, flagged (tutor_initiated_reschedule)
    first: dict[str, np.ndarray]  # tutor, ts, rating (first sessions with a rating)
    rated: dict[str, np.ndarray]  # tutor, day, bucket (1-5), n
    resched: dict[str, np.ndarray]  # tutor, ts, tutor_initiated (1, 0, -1 = not stated)
    tutor_ids: list[str]
    onboarded_ts: np.ndarray  # per tutor code: midnight UTC of tutors.onboarding_date
    archetype: np.ndarray  # per tutor code: tutors.behavioral_archetype ("" if unset)
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # tutor, initial_archetype, onboarded_ts, churned_ts, cause

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()

    @property
    def has_truth(self) -> bool:
        return len(self.truth.get("tutor", ())) > 0


def _arrays(rows: list, names: tuple[str, ...], dtypes: tuple) -> dict[str, np.ndarray]:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {n: np.asarray(c, dtype=d) for n, c, d in zip(names, cols, dtypes, strict=True)}


def _bounds(conn: Connection, days: int | None) -> tuple[datetime, datetime] | None:
    lo, hi = conn.execute(sa.select(sa.func.min(TutoringSession.scheduled_start),
                                    sa.func.max(TutoringSession.scheduled_start))).one()
    if lo is None:
        return None
    if days is not None:
        lo = max(lo, hi - timedelta(days=days))
    return lo, hi


def load(engine: Engine, days: int | None = None) -> ReportData | None:
    """Everything the checks need for the window (default: all stored sessions); None if there are none."""
    with engine.connect() as conn:
        bounds = _bounds(conn, days)
        if bounds is None:
            return None
        start, end = bounds
        in_window = sa.and_(_S.scheduled_start >= start, _S.scheduled_start <= end)
        ts = epoch_s(_S.scheduled_start)
        day = ts // DAY_S

        tutors = conn.execute(sa.select(_T.tutor_id, _T.onboarding_date, _T.behavioral_archetype)
                              .order_by(_T.tutor_id)).all()
        ids = [r[0] for r in tutors]
        code = {t: i for i, t in enumerate(ids)}
        onboarded = np.array([to_ts(r[1]) for r in tutors], dtype=float)
        archetype = np.array([r[2] or "" for r in tutors], dtype=object)

        # Derived columns are computed in a subquery and grouped outside it: PostgreSQL rejects a GROUP BY whose
        # expression repeats the SELECT's with separately bound parameters (the 86400 in day = ts // 86400).
        rating = sa.func.coalesce(sa.cast(_F.overall_rating, sa.Float), _S.student_rating)
        joined = TutoringSession.__table__.outerjoin(StudentFeedback.__table__, _F.session_id == _S.session_id)
        per = sa.select(
            _S.tutor_id.label("tutor"), day.label("day"), ((ts % DAY_S) // 3600).label("hour"),
            sa.case((_S.no_show, 1), else_=0).label("no_show"),
            sa.case((_S.tutor_initiated_reschedule, 1), else_=0).label("flagged"),
            sa.case((rating.is_(None), 0), (rating < 1.5, 1), (rating < 2.5, 2), (rating < 3.5, 3), (rating < 4.5, 4),
                    else_=5).label("bucket"),
        ).select_from(joined).where(in_window).subquery()
        n = sa.func.count()
        hourly = conn.execute(sa.select(per.c.day, per.c.hour, n, sa.func.sum(per.c.no_show))
                              .group_by(per.c.day, per.c.hour)).all()
        tutor_day = conn.execute(sa.select(per.c.tutor, per.c.day, n, sa.func.sum(per.c.no_show), sa.func.sum(per.c.flagged))
                                 .group_by(per.c.tutor, per.c.day)).all()
        rated = conn.execute(sa.select(per.c.tutor, per.c.day, per.c.bucket, n).where(per.c.bucket > 0)
                             .group_by(per.c.tutor, per.c.day, per.c.bucket)).all()
        first = conn.execute(sa.select(_S.tutor_id, ts, rating).select_from(joined)
                             .where(in_window, _S.session_number == 1, rating.is_not(None))).all()

        said = _E.metadata["tutor_initiated"].as_boolean()
        stated = sa.case((said.is_(None), -1), (said, 1), else_=0)
        resched = conn.execute(sa.select(_E.tutor_id, epoch_s(_E.event_timestamp), stated).where(
            _E.event_type == "reschedule_request", _E.event_timestamp >= start, _E.event_timestamp <= end)).all()

        truth_rows = conn.execute(sa.select(_TT.tutor_id, _TT.initial_archetype, _TT.onboarded_at,
                                            _TT.churned_at, _TT.churn_cause)).all()

    def codes(rows: list) -> list:
        # Rows of tutors missing from the tutors table cannot happen with the FK, but stay harmless.
        return [(code[r[0]], *r[1:]) for r in rows if r[0] in code]

    first_day = int(-(-start.timestamp() // DAY_S))
    last_day = int(end.timestamp() // DAY_S)  # exclusive: the day of the last session is not known to be whole
    truth = {
        "tutor": np.array([code.get(r[0], -1) for r in truth_rows], dtype=int),
        "initial_archetype": np.array([r[1] for r in truth_rows], dtype=object),
        "onboarded_ts": np.array([to_ts(r[2]) for r in truth_rows], dtype=float),
        "churned_ts": np.array([to_ts(r[3]) if r[3] else np.nan for r in truth_rows], dtype=float),
        "cause": np.array([r[4] or "" for r in truth_rows], dtype=object),
    }
    return ReportData(
        start=start, end=end, full_days=np.arange(first_day, max(first_day, last_day)),
        hourly=_arrays(hourly, ("day", "hour", "n", "no_show"), (int, int, int, int)),
        tutor_day=_arrays(codes(tutor_day), ("tutor", "day", "n", "no_show", "flagged"), (int, int, int, int, int)),
        first=_arrays(codes(first), ("tutor", "ts", "rating"), (int, float, float)),
        rated=_arrays(codes(rated), ("tutor", "day", "bucket", "n"), (int, int, int, int)),
        resched=_arrays(codes(resched), ("tutor", "ts", "tutor_initiated"), (int, float, int)),
        tutor_ids=ids, onboarded_ts=onboarded, archetype=archetype, truth=truth,
    )
