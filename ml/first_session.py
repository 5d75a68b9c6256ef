"""First-session success (PRD "ML Model Details", Model 2): the features of a tutor's first session with a new
student, known before it happens, and the dataset of past first sessions with their outcome.

A row describes one first session (a past one for training, a booking for scoring) from two sources:
- the tutor's history as of midnight UTC starting ``history_day``, in the product's definitions (the churn
  features' point-in-time grid for many tutors, the product's metrics for a few; see tutor_history): 30-day
  average rating (only when more than 5 rated sessions back it, PRD "avg rating (if >5 sessions)"), the 30-day
  engagement composite, the share of rated first sessions in 90 days rated at least the scoring rules' success
  rating, and the counts behind them. For a past session
  ``history_day`` is its own day, so nothing on or after that day is seen; a booking is read as of the last
  midnight before it is scored (the scheduled day may still be in the future);
- what the booking itself says: tenure at the scheduled day, the UTC hour block and weekday it is scheduled for
  (sessions carry UTC timestamps and no time zone), the subject, the student's age (from the grade level when
  the age is unknown).

The target (training only) is the session's rating as the product reads it after the fact: the student's
feedback rating when there is one, else the feed's quick rating; no-shows and unrated sessions are left out.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from domain.feedback.models import StudentFeedback
from domain.metrics.service import load_history, window_metrics
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from ml import feature_data
from ml.features import LOOKBACK_DAYS
from ml.features import engagement_composite, rated_window  # the churn features' own readers: one definition
from ml.windows import ratio
from rules.scoring import ScoringRuleSet

RATING_DAYS = 30
MIN_RATED = 5  # PRD: the average rating counts only with more than 5 rated sessions behind it
HOUR_BLOCK = 4  # hours per time-of-day block
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
IN_CHUNK = 500  # ids per IN (...) query
FEW_READS = 20  # up to this many (tutor, day) pairs, histories are read one by one (a booking: ms, not seconds)
HISTORY = ("avg_rating_30d", "rated_sessions_30d", "engagement_score", "first_session_success_rate",
           "first_sessions_rated")

NUMERIC: tuple[str, ...] = ("tenure_days", "avg_rating_30d", "rated_sessions_30d", "engagement_score",
                            "first_session_success_rate", "first_sessions_rated", "student_age")
CATEGORICAL: tuple[str, ...] = ("hour_block", "weekday", "subject")
FEATURES: tuple[str, ...] = NUMERIC + CATEGORICAL
DESCRIPTIONS: dict[str, str] = {
    "tenure_days": "days from the tutor's onboarding date to the scheduled day",
    "avg_rating_30d": "the tutor's mean rating over 30 days; missing unless more than 5 rated sessions",
    "rated_sessions_30d": "rated, held sessions of the tutor in those 30 days",
    "engagement_score": "the product's 30-day engagement composite (logins, prep, replies)",
    "first_session_success_rate": "share of the tutor's rated first sessions in 90 days rated >= the success rating",
    "first_sessions_rated": "rated first sessions of the tutor in those 90 days",
    "student_age": "the student's age, or grade level + 5 when the age is unknown",
    "hour_block": f"the scheduled start's {HOUR_BLOCK}-hour block of the day, UTC",
    "weekday": "the scheduled start's weekday (UTC)",
    "subject": "the session's subject",
}


@dataclass(frozen=True)
class Upcoming:
    """One first session to describe: a booking (key = booking id) or a past session (key = session id)."""

    key: str
    tutor_id: str
    student_id: str
    subject: str
    scheduled_start: datetime


@dataclass(frozen=True)
class FirstSessionTable:
    keys: np.ndarray  # object: session or booking ids
    tutor_ids: np.ndarray  # object
    starts: np.ndarray  # datetime64[s], UTC
    X: np.ndarray  # object (rows, len(FEATURES)): floats (NaN = unknown) then strings
    ratings: np.ndarray | None = None  # float: the rating the session got (training only)

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> np.ndarray:
        return self.X[:, FEATURES.index(name)]

    def subset(self, mask: np.ndarray) -> FirstSessionTable:
        return FirstSessionTable(self.keys[mask], self.tutor_ids[mask], self.starts[mask], self.X[mask],
                                 None if self.ratings is None else self.ratings[mask])

    def poor(self, below: float) -> np.ndarray:
        """1 where the session was rated below ``below`` (the PRD's poor first session)."""
        if self.ratings is None:
            raise ValueError("this table has no outcomes (bookings are scored before they happen)")
        return (self.ratings < below).astype(np.int8)


def hour_block(ts: datetime) -> str:
    start = ts.astimezone(UTC).hour // HOUR_BLOCK * HOUR_BLOCK
    return f"{start:02d}-{start + HOUR_BLOCK:02d}h UTC"


def age_of(age: int | None, grade_level: str | None) -> float:
    """The student's age; without one, a US grade level read as an age (grade N -> N + 5, kindergarten -> 5)."""
    if age is not None:
        return float(age)
    text = (grade_level or "").strip().lower()
    if text in {"k", "kindergarten"}:
        return 5.0
    found = re.search(r"\d+", text)
    return float(int(found.group()) + 5) if found and int(found.group()) <= 12 else np.nan


def _chunked(db: Session, stmt_for, ids: Sequence[str]) -> list[tuple]:  # noqa: ANN001
    ids, out = sorted(set(ids)), []
    for k in range(0, len(ids), IN_CHUNK):
        out.extend(tuple(r) for r in db.execute(stmt_for(ids[k:k + IN_CHUNK])))
    return out


def _empty(n: int) -> dict[str, np.ndarray]:
    return {k: np.full(n, np.nan) for k in HISTORY}


def tutor_history(db: Session, tutor_ids: Sequence[str], days: Sequence[date], *,
                  scoring: ScoringRuleSet) -> dict[str, np.ndarray]:
    """The tutor-history columns of each (tutor, day) pair, as of midnight UTC starting ``day``.

    Two readers of one definition (tests hold them equal): a few (a booking) are read one by one through
    the product's metrics, each an indexed query; many (a training set) in bulk through the churn features'
    grid, which reads every tutor's records of the span at once."""
    if len(set(zip(tutor_ids, days, strict=True))) <= FEW_READS:
        return history_per_tutor(db, tutor_ids, days, scoring=scoring)
    return history_in_bulk(db, tutor_ids, days, scoring=scoring)


def history_per_tutor(db: Session, tutor_ids: Sequence[str], days: Sequence[date], *,
                      scoring: ScoringRuleSet) -> dict[str, np.ndarray]:
    out = _empty(len(tutor_ids))
    if not tutor_ids:
        return out
    last, seen = max(days), {}
    for i, (tutor_id, day) in enumerate(zip(tutor_ids, days, strict=True)):
        if (tutor_id, day) in seen:  # the same tutor and day again (several bookings): the same history
            for column in out.values():
                column[i] = column[seen[tutor_id, day]]
            continue
        seen[tutor_id, day] = i
        tutor = db.get(Tutor, tutor_id)
        if tutor is None or tutor.onboarding_date > last:  # as the bulk reader: no history before onboarding
            continue
        as_of = feature_data.midnight(day)
        h = load_history(db, tutor_id, since=as_of - timedelta(days=LOOKBACK_DAYS), until=as_of)
        m30 = window_metrics(h, as_of=as_of, days=RATING_DAYS, rules=scoring)
        m90 = window_metrics(h, as_of=as_of, days=LOOKBACK_DAYS, rules=scoring)
        rated = m30.ratings_count
        out["rated_sessions_30d"][i] = rated
        out["avg_rating_30d"][i] = m30.satisfaction_avg if rated > MIN_RATED else np.nan
        out["engagement_score"][i] = m30.engagement_score
        out["first_sessions_rated"][i] = m90.first_session_rated
        rate = m90.first_session_success_rate
        out["first_session_success_rate"][i] = np.nan if rate is None else rate
    return out


def history_in_bulk(db: Session, tutor_ids: Sequence[str], days: Sequence[date], *,
                    scoring: ScoringRuleSet) -> dict[str, np.ndarray]:
    n = len(tutor_ids)
    out = _empty(n)
    if n == 0:
        return out
    first, last = min(days), max(days)
    data = feature_data.load(db, first_as_of=first, last_as_of=last, lookback_days=LOOKBACK_DAYS,
                             tutor_ids=sorted(set(tutor_ids)))
    g, s = data.grid, data.sessions
    index = {t: i for i, t in enumerate(g.tutor_ids)}
    t = np.array([index.get(x, -1) for x in tutor_ids], dtype=np.int64)
    k = np.array([LOOKBACK_DAYS + (d - first).days for d in days], dtype=np.int64)
    known = t >= 0  # a tutor onboarded after the last day has no history yet: left unknown
    if not known.any():
        return out
    t, k = t[known], k[known]

    total, count = rated_window(s, (s.quick, s.feedback), s.held, RATING_DAYS, g.shape)
    rated = count[t, k]
    out["rated_sessions_30d"][known] = rated
    out["avg_rating_30d"][known] = np.where(rated > MIN_RATED, ratio(total[t, k], rated), np.nan)
    good = scoring.first_session_success_rating
    success = ((s.quick >= good).astype(np.float64), (s.feedback >= good).astype(np.float64))
    wins, firsts = rated_window(s, success, s.held & (s.number == 1), LOOKBACK_DAYS, g.shape)
    out["first_sessions_rated"][known] = firsts[t, k]
    out["first_session_success_rate"][known] = ratio(wins[t, k], firsts[t, k])
    out["engagement_score"][known] = engagement_composite(data, scoring, RATING_DAYS)[t, k]
    return out


def describe(db: Session, items: Sequence[Upcoming], history_days: Sequence[date], *,
             scoring: ScoringRuleSet, ratings: np.ndarray | None = None) -> FirstSessionTable:
    """The feature table of ``items``; item i's tutor history is read as of midnight starting history_days[i]."""
    if len(history_days) != len(items):
        raise ValueError("one history day per item")
    onboarded = dict(_chunked(db, lambda ids: select(Tutor.tutor_id, Tutor.onboarding_date).where(Tutor.tutor_id.in_(ids)),
                              [u.tutor_id for u in items]))
    students = {sid: age_of(age, grade) for sid, age, grade in _chunked(
        db, lambda ids: select(Student.student_id, Student.age, Student.grade_level).where(Student.student_id.in_(ids)),
        [u.student_id for u in items])}
    history = tutor_history(db, [u.tutor_id for u in items], history_days, scoring=scoring)
    X = np.empty((len(items), len(FEATURES)), dtype=object)
    starts = [u.scheduled_start.astimezone(UTC) for u in items]
    on = [onboarded.get(u.tutor_id) for u in items]
    X[:, 0] = [float((s.date() - d).days) if d is not None else np.nan for s, d in zip(starts, on, strict=True)]
    for j, name in enumerate(NUMERIC[1:-1], start=1):
        X[:, j] = history[name]
    X[:, len(NUMERIC) - 1] = [students.get(u.student_id, np.nan) for u in items]
    X[:, len(NUMERIC)] = [hour_block(s) for s in starts]
    X[:, len(NUMERIC) + 1] = [WEEKDAYS[s.weekday()] for s in starts]
    X[:, len(NUMERIC) + 2] = [u.subject for u in items]
    return FirstSessionTable(
        keys=np.array([u.key for u in items], dtype=object), tutor_ids=np.array([u.tutor_id for u in items], dtype=object),
        starts=np.array([s.replace(tzinfo=None) for s in starts], dtype="datetime64[s]").reshape(len(items)), X=X,
        ratings=ratings)


def first_sessions(db: Session, *, start: date, end: date, scoring: ScoringRuleSet) -> FirstSessionTable:
    """Every rated, held first session scheduled on days start..end (inclusive), ordered by time, with its rating."""
    s, f = TutoringSession, StudentFeedback
    since, until = feature_data.midnight(start), feature_data.midnight(end) + timedelta(days=1)
    rows = db.execute(
        select(s.session_id, s.tutor_id, s.student_id, s.subject, s.scheduled_start, s.student_rating, f.overall_rating)
        .outerjoin(f, f.session_id == s.session_id)
        .where(s.session_number == 1, s.no_show.is_(False), s.scheduled_start >= since, s.scheduled_start < until)
        .order_by(s.scheduled_start, s.session_id)).all()
    # The outcome as the product reads it once everything is in: the student's feedback, else the quick rating.
    rated = [(r, float(r[6]) if r[6] is not None else float(r[5])) for r in rows if r[6] is not None or r[5] is not None]
    items = [Upcoming(key=r[0], tutor_id=r[1], student_id=r[2], subject=r[3],
                      scheduled_start=r[4] if r[4].tzinfo else r[4].replace(tzinfo=UTC)) for r, _ in rated]
    days = [u.scheduled_start.astimezone(UTC).date() for u in items]
    return describe(db, items, days, scoring=scoring, ratings=np.array([v for _, v in rated], dtype=np.float64))
