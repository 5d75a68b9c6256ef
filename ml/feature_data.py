"""Bulk reads for the feature pipeline: a few column queries turned into numpy arrays on a (tutor, day) grid.

Only records strictly before the last as-of instant are read (sessions by scheduled_start, feedback by
submitted_at, events by event_timestamp), so no row can see anything after its own date even by accident;
the per-row point-in-time cut is then exact in ml/windows.py. Never reads the simulation's truth tables or
tutors.behavioral_archetype.

Scoring every tutor for one day has a sub-second budget, and reading rows is most of it, so:
- the database computes each record's UTC day (``day_number``): no datetime object per row;
- rows come back as the driver's tuples and become numpy arrays in one conversion per query;
- only the ``detail_days`` before the first as-of day are read in full. The features' windows are at most that
  long, except the lookback (ml/features.py: 90-day session counts, days since the last held session,
  distinct subjects, first-session success; ml/first_session.py the same). So events are read from
  ``detail_days`` back only, and an older session is read in full only if it is a first session; any other
  comes as its tutor, subject and no-show flag, from one row per (tutor, subject, no-show, day) with a count,
  and its other columns are neutral (number 0, no flags, no hours, no ratings). Where its day cannot matter
  either (inside the lookback of every as-of day, e.g. always when scoring one day) it carries the latest
  day of its (tutor, subject, no-show) group: the only thing the lookback features read of it.
A feature that needs more of the older sessions must raise ``DETAIL_DAYS``; tests/unit/test_feature_data.py
checks the features against a load that reads everything in full.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import Integer, String, and_, case, cast, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor

DETAIL_DAYS = 30  # the longest feature window other than the lookback
TUTORS_PER_QUERY = 5000
EPOCH = date(1970, 1, 1)
NEVER = np.iinfo(np.int64).max // 4  # a grid day no as-of day reaches
EVENT_VALUES = {"login": ("logins", "session_prep_minutes"), "message_response": ("responses", "response_minutes"),
                "availability_change": ("availability", "hours_per_week_delta")}


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


class day_number(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """Days from 1970-01-01 to the UTC date of a timestamp, computed by the database. Rendered without bound
    parameters, so the same expression can appear in SELECT and GROUP BY on PostgreSQL."""

    type = Integer()
    inherit_cache = True
    name = "day_number"


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler, **kw) -> str:  # noqa: ANN001
    # UTCDateTime stores naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff': the date is its first ten characters.
    # julianday() of a bare date is exact (n + 0.5); of the whole text it rounds to the millisecond, which
    # would move 23:59:59.9996 to the next day.
    return f"CAST(julianday(substr({compiler.process(element.clauses, **kw)}, 1, 10)) - 2440587.5 AS INTEGER)"


@compiles(day_number, "postgresql")
def _day_number_postgresql(element: day_number, compiler, **kw) -> str:  # noqa: ANN001
    return f"(CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE) - DATE '1970-01-01')"


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


@dataclass
class Sessions:
    tutor: np.ndarray
    day: np.ndarray  # grid day of scheduled_start
    number: np.ndarray  # session_number (0 for an older session read in part, see the module docstring)
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


def load(db: Session, *, first_as_of: date, last_as_of: date, lookback_days: int, tutor_ids: Sequence[str] | None,
         detail_days: int | None = None) -> FeatureData:
    """Everything the features of as-of days first_as_of..last_as_of need, in five queries; every record in full
    from ``detail_days`` (default DETAIL_DAYS) before first_as_of, older ones as the module docstring says."""
    detail_days = DETAIL_DAYS if detail_days is None else detail_days
    if not 0 < detail_days <= lookback_days:
        raise ValueError("detail_days must be between 1 and lookback_days")
    base = midnight(first_as_of) - timedelta(days=lookback_days)
    n_days = (last_as_of - first_as_of).days + lookback_days + 1

    q = select(Tutor.tutor_id, Tutor.onboarding_date).where(Tutor.onboarding_date <= last_as_of)
    if tutor_ids is not None:
        q = q.where(Tutor.tutor_id.in_(list(tutor_ids)))
    tutors = sorted((str(t), d) for t, d in db.execute(q))
    ids = [t for t, _ in tutors]
    grid = Grid(base=base, n_days=n_days, tutor_ids=ids,
                onboarding_day=np.array([(d - base.date()).days for _, d in tutors], dtype=np.int64))
    r = _Reader(db, grid, index={t: i for i, t in enumerate(ids)}, until=midnight(last_as_of))
    detail_from = midnight(first_as_of) - timedelta(days=detail_days)
    # Sessions before this leave the lookback window of some as-of day; later ones are inside it for all.
    moving_until = midnight(last_as_of) - timedelta(days=lookback_days)
    sessions = _concat(_detailed_sessions(r, detail_from), _older_sessions(r, detail_from, moving_until))
    return FeatureData(grid=grid, sessions=sessions, **_events(r, detail_from), trainings=_trainings(r))


@dataclass
class _Reader:
    db: Session
    grid: Grid
    index: dict[str, int]
    until: datetime  # the last as-of instant
    subject_codes: dict[str, int] = field(default_factory=dict)

    def rows(self, statement_for, row: np.dtype) -> np.ndarray:  # noqa: ANN001
        """The rows of ``statement_for(tutor_ids)`` over the grid's tutors, as a structured array (NULL -> NaN
        in float fields). Naming the tutors lets both databases range-scan ix_sessions_tutor_start /
        ix_tutor_events_tutor_time instead of reading the whole table, in chunks that stay under SQLite's
        bound-parameter limit. SQLAlchemy binds the parameters; the rows are the driver's own tuples, since a
        Row object per result row costs more than the query here and every column is a plain number or string."""
        ids = self.grid.tutor_ids
        chunks = [ids[k:k + TUTORS_PER_QUERY] for k in range(0, len(ids), TUTORS_PER_QUERY)] or [[]]
        return np.concatenate([self.all_rows(statement_for(chunk), row) for chunk in chunks])

    def all_rows(self, statement, row: np.dtype) -> np.ndarray:  # noqa: ANN001
        with self.db.connection().execute(statement) as result:
            return np.array(result.cursor.fetchall(), dtype=row)

    def tutors(self, ids: np.ndarray) -> np.ndarray:
        """Grid tutor index of each id (every row read is of a tutor on the grid)."""
        return np.fromiter(map(self.index.__getitem__, ids), dtype=np.int64, count=len(ids))

    def subjects(self, names: np.ndarray) -> np.ndarray:
        """A code per subject. Any coding will do: subjects are only compared with each other."""
        codes = self.subject_codes
        return np.fromiter((codes.setdefault(v, len(codes)) for v in names), dtype=np.int64, count=len(names))

    def days(self, numbers: np.ndarray) -> np.ndarray:
        """Grid days of ``day_number`` values."""
        return np.asarray(numbers, dtype=np.int64) - (self.grid.base.date() - EPOCH).days


_DETAIL_ROW = np.dtype([("tutor", object), ("subject", object), ("day", np.int64), ("number", np.int64),
                        ("no_show", np.int64), ("rescheduled", np.int64), ("late_minutes", np.int64),
                        ("objectives", np.float64), ("minutes", np.float64), ("quick", np.float64),
                        ("feedback", np.float64), ("feedback_day", np.float64)])


def _detailed_sessions(r: _Reader, detail_from: datetime) -> Sessions:
    """Every column of the sessions inside the detail window, and of older first sessions."""
    s, f = TutoringSession, StudentFeedback
    c = r.rows(lambda tutors: (
        select(s.tutor_id, s.subject, day_number(s.scheduled_start), s.session_number, s.no_show,
               s.tutor_initiated_reschedule, s.late_start_minutes, s.learning_objectives_met, s.duration_minutes,
               s.student_rating, f.overall_rating, day_number(f.submitted_at))
        # Feedback submitted at or after the last as-of instant is invisible to every row.
        .outerjoin(f, and_(f.session_id == s.session_id, f.submitted_at < r.until))
        .where(s.tutor_id.in_(tutors), s.scheduled_start >= r.grid.base, s.scheduled_start < r.until,
               or_(s.scheduled_start >= detail_from, s.session_number == 1))), _DETAIL_ROW)
    held = c["no_show"] == 0
    has_feedback = ~np.isnan(c["feedback"])
    visible = np.full(len(c), NEVER, dtype=np.int64)
    visible[has_feedback] = r.days(c["feedback_day"][has_feedback]) + 1
    return Sessions(
        tutor=r.tutors(c["tutor"]), day=r.days(c["day"]), number=c["number"], held=held, no_show=~held,
        rescheduled=c["rescheduled"] != 0, late=held & (c["late_minutes"] > 0),
        objectives=np.where(held, c["objectives"], np.nan), hours=c["minutes"] / 60.0,
        subject=r.subjects(c["subject"]),
        # As in the product, only held sessions carry a rating.
        quick=np.where(held, c["quick"], np.nan), feedback=np.where(held, c["feedback"], np.nan),
        feedback_visible=visible)


_OLDER_ROW = np.dtype([("tutor", object), ("subject", object), ("day", np.int64), ("no_show", np.int64),
                       ("count", np.int64)])


def _older_sessions(r: _Reader, detail_from: datetime, moving_until: datetime) -> Sessions:
    """The sessions from the grid base to the detail window other than first sessions, read in part (module
    docstring): one row per session, from counts per (tutor, subject, no-show, day); the day only where it
    matters (before ``moving_until``), else the group's latest."""
    s = TutoringSession

    def statement(tutors: list[str]):  # noqa: ANN202
        older = (select(s.tutor_id, s.subject, s.no_show, s.scheduled_start,
                        case((s.scheduled_start < moving_until, day_number(s.scheduled_start))).label("bucket"))
                 .where(s.tutor_id.in_(tutors), s.scheduled_start >= r.grid.base, s.scheduled_start < detail_from,
                        s.session_number != 1)
                 .subquery())
        return (select(older.c.tutor_id, older.c.subject, day_number(func.max(older.c.scheduled_start)),
                       older.c.no_show, func.count())
                .group_by(older.c.tutor_id, older.c.subject, older.c.no_show, older.c.bucket))

    c = r.rows(statement, _OLDER_ROW)
    n, each = int(c["count"].sum()), c["count"]
    held = np.repeat(c["no_show"] == 0, each)
    return Sessions(
        tutor=np.repeat(r.tutors(c["tutor"]), each), day=np.repeat(r.days(c["day"]), each),
        number=np.zeros(n, dtype=np.int64), held=held, no_show=~held, rescheduled=np.zeros(n, dtype=bool),
        late=np.zeros(n, dtype=bool), objectives=np.full(n, np.nan), hours=np.zeros(n),
        subject=np.repeat(r.subjects(c["subject"]), each), quick=np.full(n, np.nan), feedback=np.full(n, np.nan),
        feedback_visible=np.full(n, NEVER, dtype=np.int64))


def _concat(*parts: Sessions) -> Sessions:
    names = Sessions.__dataclass_fields__
    return Sessions(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})


def _number(meta: object, key: str) -> float | None:
    # The product's reading of event metadata (domain/metrics/history.py): numbers only, booleans are not.
    value = meta.get(key) if isinstance(meta, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


_EVENT_ROW = np.dtype([("tutor", object), ("kind", object), ("day", np.int64), ("metadata", object)])


def _events(r: _Reader, detail_from: datetime) -> dict[str, Events]:
    """Logins, replies and availability changes inside the detail window (no window over them is longer)."""
    e = TutorEvent
    # The metadata as text, parsed here: on these row counts the JSON type's result processing costs more.
    c = r.rows(lambda tutors: (
        select(e.tutor_id, e.event_type, day_number(e.event_timestamp), cast(e.event_metadata, String))
        .where(e.tutor_id.in_(tutors), e.event_timestamp >= detail_from, e.event_timestamp < r.until,
               e.event_type.in_(list(EVENT_VALUES)))), _EVENT_ROW)
    out = {}
    for kind, (name, key) in EVENT_VALUES.items():
        mine = c[c["kind"] == kind]
        values = [_number(json.loads(text), key) for text in mine["metadata"]]
        out[name] = Events(tutor=r.tutors(mine["tutor"]), day=r.days(mine["day"]),
                           value=np.array(values, dtype=np.float64))  # None -> NaN
    return out


def _trainings(r: _Reader) -> list[tuple[int, str, int]]:
    """First completion of each module per tutor, over all time before ``until``: completion is cumulative,
    and trainings are rare enough to read without a lower bound."""
    e = TutorEvent
    # All tutors at once, kept or not here: no index serves the event type, and per-tutor lookups over all time
    # would read every event.
    c = r.all_rows(select(e.tutor_id, day_number(e.event_timestamp), cast(e.event_metadata, String))
                   .where(e.event_type == "training_completed", e.event_timestamp < r.until),
                   np.dtype([("tutor", object), ("day", np.int64), ("metadata", object)]))
    c = c[[t in r.index for t in c["tutor"]]]
    first: dict[tuple[int, str], int] = {}
    for tutor, day, text in zip(r.tutors(c["tutor"]), r.days(c["day"]), c["metadata"], strict=True):
        meta = json.loads(text)
        k = (int(tutor), str((meta.get("module") if isinstance(meta, dict) else None) or ""))
        first[k] = min(int(day), first.get(k, int(day)))
    # Visible from the day after the first completion.
    return [(t, m, day + 1) for (t, m), day in first.items()]
