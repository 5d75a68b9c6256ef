"""The live feed: one tick of the backfilled world, continued.

A tick rebuilds the agents from the stored world parameters (seed, epoch, headcount) and the interventions
that reached tutors, replaying every day since the epoch (a few ms a day), and generates the interval. Only
sessions scheduled *before* the tick count towards the pairings and only interventions delivered before it
count, so a tick retried after its first attempt was ingested sees the same state and produces the same rows.
An intervention acts from the day after it is delivered.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from domain.interventions.models import Intervention, InterventionStatus, OutboxMessage
from domain.sessions.models import TutoringSession
from synth.agents import Agents, Delivered
from synth.models import SynthWorld
from synth.responses import pending_messages, reader_cutoff, responses_due
from synth.scenario import LoadedScenario, load_scenario
from synth.simulate import Batch, simulate
from synth.world import World, build_world

TRUTH_LOOKBACK = timedelta(days=7)  # transitions re-offered per tick: the activity's catch-up cap


class SynthWorldMissing(LookupError):
    def __init__(self) -> None:
        super().__init__("no synthetic world in the database: run `tutorpulse synth backfill` first")


class ScenarioChanged(RuntimeError):
    def __init__(self, path: Path, recorded: str, now: str) -> None:
        super().__init__(f"scenario {path} changed since the backfill (sha256 {recorded[:12]} then, {now[:12]} now): "
                         "restore it, or start a new world with `tutorpulse synth backfill`")


@lru_cache(maxsize=2)
def _world(seed: int, n_tutors: int, epoch: datetime, scenario: LoadedScenario) -> World:
    # Building the population takes ~1 s (Faker); a tick every 15 s should not pay that each time.
    return build_world(seed, n_tutors, epoch, scenario)


@lru_cache(maxsize=4)
def agents_for(seed: int, n_tutors: int, epoch: datetime, scenario: LoadedScenario,
               delivered: tuple[Delivered, ...]) -> Agents:
    """The agents of a world given what reached them; cached until a new intervention is delivered."""
    return Agents(_world(seed, n_tutors, epoch, scenario), delivered)


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


def delivered_before(db: Session, before: datetime) -> tuple[Delivered, ...]:
    """Interventions that reached their tutor before ``before``: automated ones when the tutor's in-app
    message went out (even if the case was later cancelled), human ones when the task or a program's kickoff
    was completed with an outcome (the conversation happened)."""
    sent = (select(Intervention.intervention_id, Intervention.tutor_id, Intervention.intervention_type,
                   func.min(OutboxMessage.sent_at))
            .join(OutboxMessage, OutboxMessage.intervention_id == Intervention.intervention_id)
            .where(Intervention.kind == "automated", OutboxMessage.channel == "in_app",
                   OutboxMessage.recipient_role.is_(None), OutboxMessage.sent_at < before)
            .group_by(Intervention.intervention_id, Intervention.tutor_id, Intervention.intervention_type))
    talked = select(Intervention.intervention_id, Intervention.tutor_id, Intervention.intervention_type,
                    Intervention.completed_date).where(
        Intervention.kind == "human", Intervention.step.in_(("task", "kickoff")),
        Intervention.status == InterventionStatus.completed.value, Intervention.outcome.is_not(None),
        Intervention.completed_date < before)
    out = [Delivered(iid, tid, itype, at) for stmt in (sent, talked) for iid, tid, itype, at in db.execute(stmt)]
    return tuple(sorted(out, key=lambda d: (d.at, d.intervention_id)))


def generate_tick(engine: Engine, *, tick_start: datetime, tick_end: datetime,
                  scenario: Path | None = None) -> Batch:
    """Sessions, feedback, events, hired tutors and truth for business time [tick_start, tick_end).

    ``scenario`` overrides the file recorded on the world (which must still hash to what the backfill used).
    """
    if tick_start.tzinfo is None or tick_end.tzinfo is None:
        raise ValueError("tick_start and tick_end must be timezone-aware")
    tick_start, tick_end = tick_start.astimezone(UTC), tick_end.astimezone(UTC)
    with session_scope(engine) as db:
        row = latest_world(db)
        world_id, seed, n_tutors, epoch, per_day = row.world_id, row.seed, row.n_tutors, row.epoch, row.sessions_per_day
        scenario_path, scenario_hash = row.scenario_path, row.scenario_hash
        pair_counts = pair_counts_before(db, tick_start)
        delivered = delivered_before(db, tick_start)
    # A world moved with its repository keeps working: a recorded path that is gone falls back to the default,
    # and the hash check below still guarantees the same laws.
    loaded = load_scenario(scenario or (scenario_path if scenario_path and Path(scenario_path).exists() else None))
    if scenario_hash and loaded.hash != scenario_hash:
        raise ScenarioChanged(loaded.path, scenario_hash, loaded.hash)
    agents = agents_for(seed, n_tutors, epoch.astimezone(UTC), loaded, delivered)
    batch = simulate(agents, tick_start, tick_end, sessions_per_day=per_day, pair_counts=pair_counts)
    world = agents.world
    batch.tutors = [world.tutor_row(i, agents.onboarding_date(i)) for i in agents.known_tutors()
                    if i >= n_tutors and agents.day_start(int(agents.onboard_day[i])) < tick_end]
    batch.truth_tutors = agents.truth_rows(world_id, tick_end)
    batch.truth_transitions = agents.transition_rows(tick_start - TRUTH_LOOKBACK, tick_end)
    batch.responses = _responses(engine, agents, tick_start, tick_end,
                                 lambda known: agents_for(seed, n_tutors, epoch.astimezone(UTC), loaded, known))
    return batch


def _responses(engine: Engine, agents: Agents, tick_start: datetime, tick_end: datetime, agents_knowing) -> list:  # noqa: ANN001
    """Opens and answers of in-app messages due by the tick's end (synth/responses.py)."""
    window = timedelta(days=agents.sc.notifications.give_up_days)
    cutoff = reader_cutoff(tick_end)
    with session_scope(engine) as db:
        pending = pending_messages(db, since=tick_start - window, until=tick_end)
        # A tick crossing midnight judges the new day's messages by engagement that depends on interventions
        # delivered up to that midnight, later than the tick's own agents know: those agents are built here.
        late = delivered_before(db, cutoff) if pending and cutoff > tick_start else None
    reader = agents if late is None else agents_knowing(late)
    return responses_due(reader, pending, tick_end)
