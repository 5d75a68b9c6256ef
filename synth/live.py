"""The live feed: one tick of the backfilled world, continued.

A tick is generated from the stored world parameters and the pairings already in the database, and the
caller ingests it. Only sessions scheduled *before* the tick count towards the pairings, so a tick retried
after its first attempt was ingested sees the same state and produces the same rows (a no-op at ingestion).
"""
from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from domain.sessions.models import TutoringSession
from synth.models import SynthWorld
from synth.simulate import Batch, simulate
from synth.world import DAY, World, build_world


class SynthWorldMissing(LookupError):
    def __init__(self) -> None:
        super().__init__("no synthetic world in the database: run `tutorpulse synth backfill` first")


@lru_cache(maxsize=2)
def _world(seed: int, n_tutors: int, epoch: datetime, span_days: int) -> World:
    # Building the population takes ~1 s (Faker); a tick every 15 s should not pay that each time.
    return build_world(seed, n_tutors, epoch, span_days)


def world_span_days(row: SynthWorld) -> int:
    """The backfill's span. The world's time anchors (New tutors' onboarding, churn days) hang off the end of
    this span; rebuilding with a span that grows with each tick would slide them along and future churners
    would never leave."""
    return max(1, round((row.backfill_end - row.epoch) / DAY))


def latest_world(db: Session) -> SynthWorld:
    row = db.execute(select(SynthWorld).order_by(SynthWorld.world_id.desc()).limit(1)).scalars().first()
    if row is None:
        raise SynthWorldMissing()
    return row


def pair_counts_before(db: Session, before: datetime) -> dict[tuple[str, str], int]:
    """Last session_number per (tutor, student) over sessions scheduled before ``before``."""
    stmt = (
        select(TutoringSession.tutor_id, TutoringSession.student_id, func.max(TutoringSession.session_number))
        .where(TutoringSession.scheduled_start < before)
        .group_by(TutoringSession.tutor_id, TutoringSession.student_id)
    )
    return {(t, s): int(n) for t, s, n in db.execute(stmt)}


def generate_tick(engine: Engine, *, tick_start: datetime, tick_end: datetime) -> Batch:
    """Sessions, feedback and events for business time [tick_start, tick_end) of the latest world."""
    if tick_start.tzinfo is None or tick_end.tzinfo is None:
        raise ValueError("tick_start and tick_end must be timezone-aware")
    tick_start, tick_end = tick_start.astimezone(UTC), tick_end.astimezone(UTC)
    with session_scope(engine) as db:
        row = latest_world(db)
        seed, n_tutors, epoch, per_day = row.seed, row.n_tutors, row.epoch, row.sessions_per_day
        span = world_span_days(row)
        pair_counts = pair_counts_before(db, tick_start)
    world = _world(seed, n_tutors, epoch, span)
    return simulate(world, tick_start, tick_end, sessions_per_day=per_day, pair_counts=pair_counts)
