"""Write a simulated history through the same ingestion services the API uses.

Going through ingest_sessions/ingest_feedback/ingest_events (rather than bulk-inserting rows) means the
backfill exercises the production validation and idempotency path: every id is deterministic, so re-running
with the same seed, scenario and end re-generates identical rows and the services store none of them twice.
Sessions are left unevaluated (evaluated_at NULL); evaluating "as of" the end is the caller's step.
The backfill is history before the product existed, so no intervention reaches anyone in it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from core.types import utcnow
from domain.events.service import ingest_events
from domain.feedback.service import ingest_feedback
from domain.sessions.service import ingest_sessions
from domain.students.models import Student
from domain.tutors.models import Tutor
from synth.agents import Agents
from synth.models import SynthWorld
from synth.scenario import LoadedScenario, load_scenario
from synth.simulate import simulate
from synth.store import CHUNK, insert_missing, upsert_truth
from synth.world import build_world

_BAR = 20


@dataclass
class BackfillReport:
    world_id: int
    seed: int
    epoch: datetime
    end: datetime
    days: int
    scenario_path: str = ""
    scenario_hash: str = ""
    tutors_inserted: int = 0
    students_inserted: int = 0
    sessions_generated: int = 0
    sessions_created: int = 0
    feedback_created: int = 0
    events_created: int = 0
    truth_rows: int = 0
    churned: int = 0
    hired: int = 0
    seconds: float = 0.0
    tutor_ids: list[str] = field(default_factory=list, repr=False)  # printed reports stay readable

    @property
    def rows_created(self) -> int:
        return (self.tutors_inserted + self.students_inserted + self.sessions_created + self.feedback_created
                + self.events_created)


def _world_row(db: Session, *, seed: int, epoch: datetime, n_tutors: int, sessions_per_day: int,
               end: datetime, scenario: LoadedScenario) -> SynthWorld:
    """Reuse the row of an identical earlier run, so a re-run does not fork the live feed's world."""
    for row in db.execute(select(SynthWorld).where(SynthWorld.seed == seed, SynthWorld.n_tutors == n_tutors)).scalars():
        if row.epoch == epoch and row.sessions_per_day == sessions_per_day and row.scenario_hash == scenario.hash:
            return row
    row = SynthWorld(seed=seed, epoch=epoch, n_tutors=n_tutors, sessions_per_day=sessions_per_day,
                     backfill_end=end, last_tick_at=end, scenario_path=str(scenario.path), scenario_hash=scenario.hash)
    db.add(row)
    db.flush()
    return row


def _ingest(db: Session, ingest: Callable, items: Sequence) -> int:
    created = 0
    for i in range(0, len(items), CHUNK):
        created += sum(r.status == "created" for r in ingest(db, items[i:i + CHUNK], many=True))
    return created


def _bar(done: int, total: int) -> str:
    filled = round(_BAR * done / total)
    return "█" * filled + "░" * (_BAR - filled)


def backfill(engine: Engine, *, days: int, seed: int, n_tutors: int, sessions_per_day: int,
             end: datetime | None = None, progress: Callable[[str], None] = print,
             scenario: Path | None = None) -> BackfillReport:
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
    loaded = load_scenario(scenario)
    world = build_world(seed, n_tutors, epoch, loaded)
    agents = Agents(world)
    agents.advance_to((end.date() - world.epoch_day).days + 1)
    known = [i for i in agents.known_tutors() if agents.day_start(int(agents.onboard_day[i])) < end]
    now = utcnow()
    with session_scope(engine) as db:
        row = _world_row(db, seed=seed, epoch=world.epoch, n_tutors=n_tutors, sessions_per_day=sessions_per_day, end=end,
                         scenario=loaded)
        report = BackfillReport(world_id=row.world_id, seed=seed, epoch=epoch, end=end, days=days,
                                scenario_path=loaded.path, scenario_hash=loaded.hash,
                                tutor_ids=[world.tutor_id(i) for i in known])
        # Every tutor who exists by the end goes in first: a hire's sessions must find their tutor row.
        tutor_rows = [world.tutor_row(i, agents.onboarding_date(i), now=now if i < n_tutors else None) for i in known]
        report.tutors_inserted = insert_missing(db, Tutor, "tutor_id", tutor_rows)
        report.students_inserted = insert_missing(db, Student, "student_id", world.student_rows(now=now))
        truth = agents.truth_rows(row.world_id, end)
        report.truth_rows = upsert_truth(db, truth, agents.transition_rows(epoch - timedelta(days=1), end))
        report.churned = sum(r["churned_at"] is not None for r in truth)
        report.hired = len(known) - n_tutors
    progress(f"world {report.world_id}: scenario {loaded.path} sha256:{loaded.hash[:12]}; {len(known)} tutors "
             f"({report.tutors_inserted} new, {report.hired} hired during the span, {report.churned} churned), "
             f"{len(world.students)} students, {epoch:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")

    pair_counts: dict[tuple[str, str], int] = {}
    for k in range(days):
        batch = simulate(agents, epoch + timedelta(days=k), epoch + timedelta(days=k + 1),
                         sessions_per_day=sessions_per_day, pair_counts=pair_counts)
        with session_scope(engine) as db:
            created = _ingest(db, ingest_sessions, batch.sessions)
            report.feedback_created += _ingest(db, ingest_feedback, batch.feedback)
            report.events_created += _ingest(db, ingest_events, batch.events)
        report.sessions_generated += len(batch.sessions)
        report.sessions_created += created
        progress(f"day {k + 1}/{days} {_bar(k + 1, days)} {len(batch.sessions)} sessions, {len(batch.feedback)} "
                 f"feedback, {len(batch.events)} events ({created} sessions new, "
                 f"{time.perf_counter() - started:.0f}s)")
    report.seconds = round(time.perf_counter() - started, 2)
    return report
