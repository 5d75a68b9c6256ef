"""Write a simulated history through the same ingestion services the API uses.

Going through ingest_sessions/ingest_feedback/ingest_events (rather than bulk-inserting rows) means the
backfill exercises the production validation and idempotency path: every id is deterministic, so re-running
with the same seed and end re-generates identical rows and the services store none of them twice.
Sessions are left unevaluated (evaluated_at NULL); evaluating "as of" the end is the caller's step.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from core.types import utcnow
from domain.events.service import ingest_events
from domain.feedback.service import ingest_feedback
from domain.sessions.service import ingest_sessions
from domain.students.models import Student
from domain.tutors.models import Tutor
from synth.models import SynthWorld
from synth.simulate import simulate
from synth.world import World, build_world

CHUNK = 5000
_ID_CHUNK = 900  # keeps IN (...) under SQLite's parameter limit


@dataclass
class BackfillReport:
    world_id: int
    seed: int
    epoch: datetime
    end: datetime
    days: int
    tutors_inserted: int = 0
    students_inserted: int = 0
    sessions_generated: int = 0
    sessions_created: int = 0
    feedback_created: int = 0
    events_created: int = 0
    seconds: float = 0.0
    tutor_ids: list[str] = field(default_factory=list, repr=False)  # printed reports stay one line

    @property
    def rows_created(self) -> int:
        return (self.tutors_inserted + self.students_inserted + self.sessions_created + self.feedback_created
                + self.events_created)


def _world_row(db: Session, world: World, *, n_tutors: int, sessions_per_day: int, end: datetime) -> SynthWorld:
    """Reuse the row of an identical earlier run, so a re-run does not fork the live feed's world."""
    for row in db.execute(select(SynthWorld).where(SynthWorld.seed == world.seed, SynthWorld.n_tutors == n_tutors)).scalars():
        if row.epoch == world.epoch and row.sessions_per_day == sessions_per_day:
            return row
    # created_at carries the backfill's end in business time: the live feed rebuilds the world with the
    # backfill's span from it (synth_world has no span column), keeping New tutors' onboarding and churn days
    # where the backfill put them. With the default end (now) it is the wall-clock creation time anyway.
    row = SynthWorld(seed=world.seed, epoch=world.epoch, n_tutors=n_tutors, sessions_per_day=sessions_per_day,
                     backfill_end=end, last_tick_at=end)
    db.add(row)
    db.flush()
    return row


def _insert_missing(db: Session, table: type, key: str, rows: list[dict]) -> int:
    column = getattr(table, key)
    ids = [r[key] for r in rows]
    found: set[str] = set()
    for i in range(0, len(ids), _ID_CHUNK):
        found.update(db.execute(select(column).where(column.in_(ids[i:i + _ID_CHUNK]))).scalars())
    fresh = [r for r in rows if r[key] not in found]
    for i in range(0, len(fresh), CHUNK):
        db.execute(insert(table), fresh[i:i + CHUNK])
    return len(fresh)


def _ingest(db: Session, ingest: Callable, items: Sequence) -> int:
    created = 0
    for i in range(0, len(items), CHUNK):
        created += sum(r.status == "created" for r in ingest(db, items[i:i + CHUNK], many=True))
    return created


def backfill(engine: Engine, *, days: int, seed: int, n_tutors: int, sessions_per_day: int,
             end: datetime | None = None, progress: Callable[[str], None] = print) -> BackfillReport:
    """Simulate ``days`` days ending at ``end`` (default: now, to the minute) and ingest them day by day.

    Meant for an empty database or a re-run with the same seed and end; a different world on top of an
    existing one would mix two populations under the same tutor ids.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if end is None:
        end = utcnow().replace(second=0, microsecond=0)
    elif end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    end = end.astimezone(UTC)
    epoch = end - timedelta(days=days)
    started = time.perf_counter()
    world = build_world(seed, n_tutors, epoch, days)
    now = utcnow()
    with session_scope(engine) as db:
        row = _world_row(db, world, n_tutors=n_tutors, sessions_per_day=sessions_per_day, end=end)
        report = BackfillReport(world_id=row.world_id, seed=seed, epoch=epoch, end=end, days=days,
                                tutor_ids=[t.tutor_id for t in world.tutors])
        report.tutors_inserted = _insert_missing(db, Tutor, "tutor_id", world.tutor_rows(now=now))
        report.students_inserted = _insert_missing(db, Student, "student_id", world.student_rows(now=now))
    progress(f"world {report.world_id}: {n_tutors} tutors ({report.tutors_inserted} new), "
             f"{len(world.students)} students ({report.students_inserted} new), {epoch:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")

    pair_counts: dict[tuple[str, str], int] = {}
    for k in range(days):
        batch = simulate(world, epoch + timedelta(days=k), epoch + timedelta(days=k + 1),
                         sessions_per_day=sessions_per_day, pair_counts=pair_counts)
        with session_scope(engine) as db:
            created = _ingest(db, ingest_sessions, batch.sessions)
            report.feedback_created += _ingest(db, ingest_feedback, batch.feedback)
            report.events_created += _ingest(db, ingest_events, batch.events)
        report.sessions_generated += len(batch.sessions)
        report.sessions_created += created
        progress(f"day {k + 1}/{days}: {len(batch.sessions)} sessions, {len(batch.feedback)} feedback, "
                 f"{len(batch.events)} events ({created} sessions new)")
    report.seconds = round(time.perf_counter() - started, 2)
    return report
