"""Records the workflow histories that tests/replay/test_replay.py replays against the current code.

    python -m tests.replay.record [--out tests/replay/histories] [--only NAME[,NAME...]]   (or: make histories)

Runs one realistic scenario per workflow type with the real worker (build_worker: real activities, a temporary
SQLite database migrated with Alembic, a local mail sink) and saves each workflow's history as <name>.json:

* time-skipping server (temporal-test-server), for the intervention types whose SLAs and follow-ups are days
  long: H1 reminder + escalation, H4 claim/complete, an H3 PIP (approval, kickoff, extension, weekly check-ins,
  outcome review), A1 by email (tutor responds; another cancelled by the rules), A2 with its training
  follow-up, A4 whose follow-up escalates to a manager review. Also an H1 run by the workflow as it was
  *before* the reminder patch (tests/replay/variants.py): ``human_task_pre_reminder_patch.json``.
* dev server (temporal), for the rest: a tutor's lifecycle with two session signals (still running: its
  current history), the pending-session sweep, and on a small synthetic world the monthly review, a daily
  rollup, the weekly trends and a live synth tick.

Re-recording replaces saved histories: see tests/replay/README.md for when (almost never) to do it. ``--only``
records just the named histories (e.g. the first one of a new workflow type) and leaves the others alone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.config import Settings
from core.db import get_engine, session_scope
from core.migrate import upgrade
from core.temporal import group_by_tutor, notify_sessions_ingested, tutor_workflow_id
from core.types import utcnow
from domain.events.schemas import TutorEventIn
from domain.events.service import ingest_events
from domain.interventions.models import Intervention
from domain.interventions.planning import build_plan, intervention_id
from domain.notifications.sink import read_mail, start_mail_sink
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from rules.interventions import active_intervention_rules
from synth.backfill import backfill
from tests.factories import seed_people, session_payload
from tests.integration.pipeline_helpers import eventually, troubled_history
from tests.replay.variants import PrePatchHumanTaskWorkflow
from worker import build_worker
from workflows.automated import AutomatedInterventionWorkflow
from workflows.human_task import HumanTaskWorkflow
from workflows.inputs import (
    InterventionPlan,
    RollupInput,
    SweepInput,
    SynthTickInput,
    TaskCommand,
    TrendsInput,
)
from workflows.periodic import PopulationRollupWorkflow, SweepWorkflow, SynthTickWorkflow, WeeklyTrendsWorkflow
from workflows.program import ProgramWorkflow
from workflows.tutor_lifecycle import TutorLifecycleWorkflow

DEFAULT_OUT = Path(__file__).resolve().parent / "histories"
BIN = Path(sys.executable).parent

SARAH = TaskCommand(actor="u_sarah", actor_role="ops_manager")
MARCUS = TaskCommand(actor="u_marcus", actor_role="people_ops")
MEDIUM = {"churn_score": 40.0, "risk_level": "Medium", "metrics_below_threshold": 2, "tier": "Strong"}
HIGH_SKILL_GAP = {"churn_score": 58.0, "risk_level": "High", "weakest_subject_rating_30d": 3.2,
                  "weakest_subject": "Mathematics"}
HIGH_RESCHEDULE = {"churn_score": 62.0, "risk_level": "High", "flag_high_reschedule": True}
CRITICAL = {"churn_score": 82.0, "risk_level": "Critical"}

# Synthetic world for the periodic workflows: small, fixed seed (the unit tests' engine world uses the same sizes).
WORLD_SEED, WORLD_TUTORS, WORLD_DAYS, WORLD_SESSIONS_PER_DAY = 5, 8, 21, 40


# --- plumbing -------------------------------------------------------------------------------------------------

def binary(name: str) -> str:
    found = shutil.which(name) or str(BIN / name)
    if not Path(found).exists():
        raise SystemExit(f"{name} binary missing: install the test extras (make install)")
    return found


def log(line: str) -> None:
    print(line, flush=True)


@dataclass
class Recorder:
    out: Path
    only: set[str] | None
    saved: list[str] = field(default_factory=list)

    def wants(self, names: tuple[str, ...]) -> bool:
        return self.only is None or bool(self.only & set(names))

    async def save(self, handle: WorkflowHandle, name: str) -> None:
        if self.only is not None and name not in self.only:
            return
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        # Indented, so a re-recording shows up in review as a readable diff.
        text = json.dumps(json.loads(history.to_json()), indent=1) + "\n"
        (self.out / f"{name}.json").write_text(text)
        self.saved.append(name)
        log(f"    saved {name}.json: {started}, {len(history.events)} events")


@dataclass
class Scenario:
    names: tuple[str, ...]  # the histories it writes
    run: Callable[..., Awaitable[None]]


def make_settings(folder: Path, name: str, sink_port: int) -> Settings:
    url = f"sqlite:///{folder / f'{name}.db'}"
    upgrade(url)
    return Settings(database_url=url, temporal_task_queue=f"replay-{name}-{uuid.uuid4().hex[:6]}", time_scale=1.0,
                    sweep_grace_seconds=1, smtp_port=sink_port, mail_dir=folder / "mail", var_dir=folder)


def plan_for(settings: Settings, tutor: str, itype: str, facts: dict[str, Any],
             at: datetime | None = None) -> InterventionPlan:
    """The plan the decide activity would build for this type, from the rules file (real SLAs and follow-ups)."""
    rules = active_intervention_rules(settings.rules_dir)
    at = at or utcnow()
    return build_plan(intervention_id(tutor, itype, at), tutor, itype, rules.spec.interventions[itype], facts=facts,
                      matched=["replay_recording"], as_of=at, rules=rules, time_scale=settings.time_scale)


def row(engine: Engine, iid: str) -> Intervention | None:
    with session_scope(engine) as db:
        return db.get(Intervention, iid)


def workflow_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor,
                    workflows: list[type] | None = None) -> Worker:
    """The production worker; ``workflows`` swaps in other workflow classes (the pre-patch recording)."""
    if workflows is None:
        return build_worker(client, settings, executor)
    # The same activities and options, read from a production worker that never runs (on a queue of its own:
    # two workers of one process may not share a task queue), then the requested workflows on the real queue.
    model = build_worker(client, settings, executor, task_queue=f"{settings.temporal_task_queue}-unused")
    return Worker(**{**model.config(), "task_queue": settings.temporal_task_queue, "workflows": workflows})


@dataclass
class Ctx:
    """What a scenario gets: the server's client, the worker's settings and database, and the recorder."""
    env: WorkflowEnvironment
    settings: Settings
    engine: Engine
    rec: Recorder
    tutor: str = ""
    as_of: datetime | None = None  # the periodic workflows: the synthetic world's last midnight

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(self, run: Any, plan: InterventionPlan) -> WorkflowHandle:  # noqa: ANN401
        return await self.client.start_workflow(run, plan, id=plan.intervention_id,
                                                task_queue=self.settings.temporal_task_queue)


# --- time-skipping server: intervention workflows ----------------------------------------------------------

async def h1_reminder_escalation(ctx: Ctx, name: str = "human_task_h1_reminder_escalation") -> None:
    """H1 nobody picks up: reminder 12 h before the 48 h SLA, escalation at it, then a manager closes it."""
    plan = plan_for(ctx.settings, ctx.tutor, "H1_coaching_session", {"churn_score": 70.0, "risk_level": "High"})
    assert plan.sla_seconds and plan.reminder_before_seconds, "H1 lost its SLA or reminder in the rules file"
    handle = await ctx.start(HumanTaskWorkflow.run, plan)
    await eventually(lambda: row(ctx.engine, plan.intervention_id), what="H1 recorded")
    await ctx.env.sleep(timedelta(hours=37))  # past the reminder (36 h), before the SLA (48 h)
    if name == "human_task_pre_reminder_patch":
        await asyncio.sleep(1)
        assert row(ctx.engine, plan.intervention_id).reminded_at is None, "the pre-patch workflow sent a reminder"
    else:
        await eventually(lambda: row(ctx.engine, plan.intervention_id).reminded_at, what="H1 reminder")
    await ctx.env.sleep(timedelta(hours=12))
    await eventually(lambda: row(ctx.engine, plan.intervention_id).escalated_at, what="H1 escalation")
    await handle.execute_update(HumanTaskWorkflow.claim, SARAH)
    await handle.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_sarah", actor_role="ops_manager", outcome="improved", notes="coached after the escalation"))
    result = await handle.result()
    assert result.status == "completed" and result.escalated
    await ctx.rec.save(handle, name)


async def h1_pre_reminder_patch(ctx: Ctx) -> None:
    await h1_reminder_escalation(ctx, name="human_task_pre_reminder_patch")


async def h4_claim_complete(ctx: Ctx) -> None:
    """H4 worked from the queue: a refused completion, claim, release, a manager's assignment, completion."""
    plan = plan_for(ctx.settings, ctx.tutor, "H4_retention_interview", {"churn_score": 66.0, "risk_level": "High"})
    handle = await ctx.start(HumanTaskWorkflow.run, plan)
    done = TaskCommand(actor="u_marcus", actor_role="people_ops", outcome="improved", notes="talked it through")
    try:
        await handle.execute_update(HumanTaskWorkflow.complete, done)
    except WorkflowUpdateFailedError as refused:  # the validator refuses it: nothing reaches the history
        assert "claim or assign" in str(refused.cause)
    else:
        raise AssertionError("completing an unclaimed task was accepted")
    await handle.execute_update(HumanTaskWorkflow.claim, MARCUS)
    await handle.execute_update(HumanTaskWorkflow.unclaim, MARCUS)
    await handle.execute_update(HumanTaskWorkflow.assign, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                      assignee="u_marcus"))
    await handle.execute_update(HumanTaskWorkflow.complete, done)
    assert (await handle.result()).outcome == "improved"
    await ctx.rec.save(handle, "human_task_h4_claim_complete")


async def h3_pip_program(ctx: Ctx) -> None:
    """H3 PIP: approval, kickoff, a 7-day extension, five weekly check-ins, the outcome review; the unworked
    check-ins close with the program."""
    plan = plan_for(ctx.settings, ctx.tutor, "H3_pip", CRITICAL)
    pid, client = plan.intervention_id, ctx.client
    handle = await ctx.start(ProgramWorkflow.run, plan)
    await eventually(lambda: (r := row(ctx.engine, f"{pid}-kickoff")) and r.status == "needs_approval",
                     what="PIP kickoff")
    kickoff = client.get_workflow_handle(f"{pid}-kickoff")
    await kickoff.execute_update(HumanTaskWorkflow.approve, SARAH)
    await kickoff.execute_update(HumanTaskWorkflow.claim, MARCUS)
    await kickoff.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_marcus", actor_role="people_ops", outcome="no_change", notes="goals agreed"))
    await eventually(lambda: row(ctx.engine, pid).status == "in_progress", what="PIP started")
    await handle.execute_update(ProgramWorkflow.extend, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                    extend_days=7))
    for week in (1, 2, 3, 4, 5):  # 37 days with the extension: check-ins on days 7 .. 35
        await ctx.env.sleep(timedelta(days=7))
        await eventually(lambda w=week: row(ctx.engine, f"{pid}-checkin-{w}"), what=f"check-in {week}")
        if week == 1:
            c1 = client.get_workflow_handle(f"{pid}-checkin-1")
            await c1.execute_update(HumanTaskWorkflow.claim, MARCUS)
            await c1.execute_update(HumanTaskWorkflow.complete, TaskCommand(
                actor="u_marcus", actor_role="people_ops", outcome="no_change", notes="on track"))
    await ctx.env.sleep(timedelta(days=3))
    await eventually(lambda: row(ctx.engine, f"{pid}-review"), what="outcome review")
    review = client.get_workflow_handle(f"{pid}-review")
    await review.execute_update(HumanTaskWorkflow.assign, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                      assignee="u_marcus"))
    await review.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_marcus", actor_role="people_ops", outcome="improved", notes="met all goals"))
    result = await handle.result()
    assert result.status == "completed" and result.outcome == "improved"
    await eventually(lambda: row(ctx.engine, f"{pid}-checkin-2").status == "cancelled", what="check-ins closed")
    for suffix in ("checkin-1", "checkin-2", "review"):
        try:
            await client.get_workflow_handle(f"{pid}-{suffix}").result()
        except Exception:  # noqa: BLE001, S110 - a check-in cancelled with its program ends as a cancellation
            pass
    await ctx.rec.save(handle, "program_h3_pip")
    await ctx.rec.save(kickoff, "human_task_pip_kickoff_approval")
    await ctx.rec.save(client.get_workflow_handle(f"{pid}-checkin-1"), "human_task_pip_checkin_completed")
    await ctx.rec.save(client.get_workflow_handle(f"{pid}-checkin-2"), "human_task_pip_checkin_cancelled_with_program")
    await ctx.rec.save(review, "human_task_pip_review")


async def a1_email(ctx: Ctx) -> None:
    """A1 by email (to the local sink); the tutor responds a day later and the case completes. A second A1, a
    week on, is cancelled when the rules no longer ask for it."""
    plan = plan_for(ctx.settings, ctx.tutor, "A1_coaching_tips", MEDIUM)
    assert "email" in plan.channels
    mails = len(read_mail(ctx.settings.mail_dir))
    handle = await ctx.start(AutomatedInterventionWorkflow.run, plan)
    await eventually(lambda: len(read_mail(ctx.settings.mail_dir)) == mails + 1, what="A1 email delivered")
    await ctx.env.sleep(timedelta(days=1))
    await handle.signal(AutomatedInterventionWorkflow.tutor_responded)
    assert (await handle.result()).status == "completed"
    await ctx.rec.save(handle, "automated_a1_email_responded")

    later = plan_for(ctx.settings, ctx.tutor, "A1_coaching_tips", MEDIUM, at=utcnow() + timedelta(days=1))
    h2 = await ctx.start(AutomatedInterventionWorkflow.run, later)
    await eventually(lambda: len(read_mail(ctx.settings.mail_dir)) == mails + 2, what="second A1 email delivered")
    await ctx.env.sleep(timedelta(days=1))
    await h2.signal(AutomatedInterventionWorkflow.rules_unmatched, "no longer matched: risk Low")
    assert (await h2.result()).status == "cancelled"
    await ctx.rec.save(h2, "automated_a1_rules_unmatched")


async def a2_training_follow_up(ctx: Ctx) -> None:
    """A2: the module suggestion goes out; the tutor completes a training; the 7-day follow-up finds it."""
    plan = plan_for(ctx.settings, ctx.tutor, "A2_training_module", HIGH_SKILL_GAP)
    assert plan.follow_up == "check_training"
    handle = await ctx.start(AutomatedInterventionWorkflow.run, plan)
    await eventually(lambda: row(ctx.engine, plan.intervention_id), what="A2 recorded")
    await ctx.env.sleep(timedelta(days=2))
    with session_scope(ctx.engine) as db:
        ingest_events(db, [TutorEventIn(event_id=f"training_{ctx.tutor}_a2", tutor_id=ctx.tutor,
                                        event_type="training_completed",
                                        event_timestamp=plan.recommended_at + timedelta(days=1),
                                        metadata={"module": "engagement-basics", "duration_minutes": 15})], many=True)
    assert (await handle.result()).status == "completed"
    follow_up = row(ctx.engine, plan.intervention_id).follow_up_result
    assert follow_up and follow_up.startswith("1 training"), follow_up
    await ctx.rec.save(handle, "automated_a2_training_follow_up")


async def a4_follow_up_escalates(ctx: Ctx) -> None:
    """A4: the rescheduling pattern still holds 14 days on, so the follow-up opens a manager review (a
    HumanTaskWorkflow child), which the manager then completes."""
    with session_scope(ctx.engine) as db:
        now = utcnow()
        db.add(ChurnPrediction(tutor_id=ctx.tutor, prediction_date=now.date(), as_of=now, churn_score=62.0,
                               risk_level="High", facts=HIGH_RESCHEDULE, model_version="replay-recording"))
    plan = plan_for(ctx.settings, ctx.tutor, "A4_reschedule_alert", HIGH_RESCHEDULE)
    assert plan.follow_up == "escalate_if" and plan.escalation_plan is not None
    handle = await ctx.start(AutomatedInterventionWorkflow.run, plan)
    result = await handle.result()
    assert result.status == "completed" and result.escalated, result
    review = ctx.client.get_workflow_handle(plan.escalation_plan.intervention_id)
    await eventually(lambda: row(ctx.engine, plan.escalation_plan.intervention_id), what="A4 manager review")
    await review.execute_update(HumanTaskWorkflow.claim, SARAH)
    await review.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_sarah", actor_role="ops_manager", outcome="improved", notes="schedule fixed"))
    await review.result()
    await ctx.rec.save(handle, "automated_a4_follow_up_escalates")
    await ctx.rec.save(review, "human_task_a4_escalation_review")


SKIPPING = [
    Scenario(("human_task_h1_reminder_escalation",), h1_reminder_escalation),
    Scenario(("human_task_h4_claim_complete",), h4_claim_complete),
    Scenario(("program_h3_pip", "human_task_pip_kickoff_approval", "human_task_pip_checkin_completed",
              "human_task_pip_checkin_cancelled_with_program", "human_task_pip_review"), h3_pip_program),
    Scenario(("automated_a1_email_responded", "automated_a1_rules_unmatched"), a1_email),
    Scenario(("automated_a2_training_follow_up",), a2_training_follow_up),
    Scenario(("automated_a4_follow_up_escalates", "human_task_a4_escalation_review"), a4_follow_up_escalates),
]
PRE_PATCH = Scenario(("human_task_pre_reminder_patch",), h1_pre_reminder_patch)


async def record_skipping(rec: Recorder, folder: Path, executor: ThreadPoolExecutor, sink_port: int) -> None:
    todo = [s for s in [*SKIPPING, PRE_PATCH] if rec.wants(s.names)]
    if not todo:
        return
    settings = make_settings(folder, "interventions", sink_port)
    engine = get_engine(settings.database_url)
    tutors = seed_people(engine, tutors=len(todo), students=0, tag="replay")
    for scenario, tutor in zip(todo, tutors, strict=True):
        log(f"  [time-skipping] {scenario.run.__name__}")
        # One server per scenario: its virtual clock is global, so an unfinished workflow of one would stall the next.
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
        try:
            workflows = [PrePatchHumanTaskWorkflow] if scenario is PRE_PATCH else None
            async with workflow_worker(env.client, settings, executor, workflows):
                await scenario.run(Ctx(env, settings, engine, rec, tutor))
        finally:
            await env.shutdown()
    engine.dispose()


# --- dev server: lifecycle, sweep and the periodic workflows ------------------------------------------------

async def settled_history_length(handle: WorkflowHandle, *, timeout: float = 60) -> int:
    """Waits until a running workflow is idle (last event a completed workflow task, nothing new for a second)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        history = await handle.fetch_history()
        n = len(history.events)
        if n == last and history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return n
        last = n
        await asyncio.sleep(1)
    raise AssertionError(f"{handle.id} did not settle within {timeout}s")


def ingest(engine: Engine, payloads: list[dict[str, Any]]) -> dict[str, list[str]]:
    with session_scope(engine) as db:
        created = ingest_sessions(db, [SessionIn.model_validate(p) for p in payloads], many=True)
    new = {r.id for r in created if r.status == "created"}
    return group_by_tutor((p["tutor_id"], p["session_id"]) for p in payloads if p["session_id"] in new)


async def lifecycle_two_signals(ctx: Ctx) -> None:
    """A tutor's troubled week arrives (one signal-with-start: evaluation, Critical, intervention children), then
    one more session (a second signal, a second evaluation that starts no duplicates). Saved while running."""
    q = ctx.settings.temporal_task_queue
    now = utcnow().replace(microsecond=0)
    await notify_sessions_ingested(ctx.client, ingest(ctx.engine, troubled_history(ctx.tutor, now)), task_queue=q)
    handle = ctx.client.get_workflow_handle(tutor_workflow_id(ctx.tutor))

    async def evaluations() -> int:
        return (await handle.query(TutorLifecycleWorkflow.state)).evaluations

    deadline = time.monotonic() + 60
    while await evaluations() < 1:
        assert time.monotonic() < deadline, "the first evaluation did not happen"
        await asyncio.sleep(0.25)
    await settled_history_length(handle)  # the evaluation's children are started too
    state = await handle.query(TutorLifecycleWorkflow.state)
    assert state.started_interventions, f"the troubled week started no interventions: {state}"
    more = [session_payload(20, tutor=ctx.tutor, student="student_3", at=now)]
    await notify_sessions_ingested(ctx.client, ingest(ctx.engine, more), task_queue=q)
    while await evaluations() < 2:
        assert time.monotonic() < deadline, "the second evaluation did not happen"
        await asyncio.sleep(0.25)
    await settled_history_length(handle)
    state = await handle.query(TutorLifecycleWorkflow.state)
    log(f"    lifecycle: {state.evaluations} evaluations, risk {state.risk_level}, "
        f"started {', '.join(i.split('-')[-2] for i in state.started_interventions)}")
    await ctx.rec.save(handle, "tutor_lifecycle_two_signals")


async def sweep_pending(ctx: Ctx) -> None:
    """Sessions stored while Temporal was unreachable (no signal): the sweep finds and signals their tutor."""
    ingest(ctx.engine, [session_payload(n, tutor=ctx.tutor, student="student_2", at=utcnow()) for n in (1, 2)])
    await asyncio.sleep(1.5)  # past the sweep's grace period
    handle = await ctx.client.start_workflow(SweepWorkflow.run, SweepInput(grace_seconds=1),
                                             id=f"sweep-{ctx.settings.temporal_task_queue}",
                                             task_queue=ctx.settings.temporal_task_queue)
    result = await handle.result()
    assert result.tutors_signalled >= 1, result
    await ctx.rec.save(handle, "sweep_pending_sessions")


SPINE = [
    Scenario(("tutor_lifecycle_two_signals",), lifecycle_two_signals),
    Scenario(("sweep_pending_sessions",), sweep_pending),
]


async def periodic_on_synthetic_world(ctx: Ctx) -> None:
    """The monthly review and a daily rollup (whose risk moves signal tutors), the weekly trends, a live tick."""
    q = ctx.settings.temporal_task_queue
    midnight = ctx.as_of
    assert midnight is not None
    review = await ctx.client.start_workflow(PopulationRollupWorkflow.run, RollupInput(review=True, as_of=midnight),
                                             id=f"review-{q}", task_queue=q)
    summary = await review.result()
    log(f"    review: {summary.tutors} tutors, {summary.active} active, tiers {summary.tier_counts}")
    await ctx.rec.save(review, "population_rollup_monthly_review")

    daily = await ctx.client.start_workflow(PopulationRollupWorkflow.run,
                                            RollupInput(as_of=midnight + timedelta(days=7)), id=f"rollup-{q}",
                                            task_queue=q)
    summary = await daily.result()
    log(f"    daily rollup a week on: {len(summary.risk_changed)} risk changes, {summary.tutors_signalled} signalled")
    await ctx.rec.save(daily, "population_rollup_daily")

    trends = await ctx.client.start_workflow(WeeklyTrendsWorkflow.run, TrendsInput(as_of=midnight),
                                             id=f"trends-{q}", task_queue=q)
    log(f"    weekly trends: {(await trends.result()).tutors} tutors")
    await ctx.rec.save(trends, "weekly_trends")

    tick = await ctx.client.start_workflow(SynthTickWorkflow.run, SynthTickInput(), id=f"synth-tick-{q}", task_queue=q)
    result = await tick.result()
    log(f"    synth tick: {result.sessions} sessions, {result.feedback} feedback, {result.events} events")
    await ctx.rec.save(tick, "synth_tick")


WORLD = Scenario(("population_rollup_monthly_review", "population_rollup_daily", "weekly_trends", "synth_tick"),
                 periodic_on_synthetic_world)


async def record_dev_server(rec: Recorder, folder: Path, executor: ThreadPoolExecutor, sink_port: int) -> None:
    spine = [s for s in SPINE if rec.wants(s.names)]
    world = rec.wants(WORLD.names)
    if not spine and not world:
        return
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"), dev_server_log_level="error")
    try:
        if spine:
            settings = make_settings(folder, "spine", sink_port)
            engine = get_engine(settings.database_url)
            # Ten days in: a new tutor, so the troubled week scores Critical (tenure risk on top).
            tutors = seed_people(engine, tutors=len(spine), students=3, tag="replay",
                                 onboarded=date.today() - timedelta(days=10))
            async with workflow_worker(env.client, settings, executor):
                for scenario, tutor in zip(spine, tutors, strict=True):
                    log(f"  [dev server] {scenario.run.__name__}")
                    await scenario.run(Ctx(env, settings, engine, rec, tutor))
            engine.dispose()
        if world:
            settings = make_settings(folder, "world", sink_port)
            engine = get_engine(settings.database_url)
            # Ends a day ago (on the hour): the live tick afterwards catches up that day, ingests its sessions and
            # signals those tutors, as a tick after a pause does.
            end = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
            log(f"  [dev server] synthetic world: {WORLD_TUTORS} tutors, {WORLD_DAYS} days, seed {WORLD_SEED}")
            report = await asyncio.to_thread(
                backfill, engine, days=WORLD_DAYS, seed=WORLD_SEED, n_tutors=WORLD_TUTORS,
                sessions_per_day=WORLD_SESSIONS_PER_DAY, end=end, progress=lambda line: log(f"    {line}"))
            log(f"    {report.sessions_created} sessions")
            async with workflow_worker(env.client, settings, executor):
                log(f"  [dev server] {WORLD.run.__name__}")
                midnight = datetime.combine(end.date(), datetime.min.time(), tzinfo=UTC)
                await WORLD.run(Ctx(env, settings, engine, rec, as_of=midnight))
            engine.dispose()
    finally:
        await env.shutdown()


# --- entry point ------------------------------------------------------------------------------------------

ALL_NAMES = [n for s in [*SKIPPING, PRE_PATCH, *SPINE, WORLD] for n in s.names]


async def record(out: Path, only: set[str] | None = None) -> list[str]:
    unknown = (only or set()) - set(ALL_NAMES)
    if unknown:
        raise SystemExit(f"unknown history name(s) {sorted(unknown)}; known: {', '.join(ALL_NAMES)}")
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(out=out, only=only)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tp-replay-") as tmp, ThreadPoolExecutor(max_workers=8) as executor:
        folder = Path(tmp)
        sink = start_mail_sink(folder / "mail")
        try:
            log(f"recording workflow histories into {out}")
            await record_skipping(rec, folder, executor, sink.port)
            await record_dev_server(rec, folder, executor, sink.port)
        finally:
            sink.stop()
    log(f"saved {len(rec.saved)} histories in {time.monotonic() - started:.0f}s")
    return rec.saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.replay.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for <name>.json (default: %(default)s)")
    parser.add_argument("--only", help="comma-separated history names to (re-)record; the others are left alone")
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
    asyncio.run(record(args.out, only))


if __name__ == "__main__":
    main()
