"""Dev server (temporal) scenarios: the tutor lifecycle, the pending-session sweep and the periodic workflows.

A tutor's lifecycle with two session signals (still running: its current history), the pending-session sweep,
and on a small synthetic world the monthly review, a daily rollup, the weekly trends and a live synth tick;
on a churn-rich world the daily churn-model retraining.
``record_dev_server`` runs the wanted ones on one local dev server.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from core.db import get_engine, session_scope
from core.temporal import notify_sessions_ingested, tutor_workflow_id
from core.types import utcnow
from domain.evaluation.batch import evaluate_population
from rules.scoring import active_scoring_rules
from synth.backfill import backfill
from tests.factories import seed_people, session_payload
from tests.integration.model_world import WORLD_END as MODEL_WORLD_END
from tests.integration.model_world import build_template
from tests.integration.pipeline_helpers import troubled_history
from tests.replay.common import (
    Ctx,
    Recorder,
    Scenario,
    binary,
    ingest,
    log,
    make_settings,
    settled_history_length,
    workflow_worker,
)
from workflows.inputs import RollupInput, SweepInput, SynthTickInput, TrendsInput
from workflows.model import ModelRetrainWorkflow
from workflows.periodic import PopulationRollupWorkflow, SweepWorkflow, SynthTickWorkflow, WeeklyTrendsWorkflow
from workflows.retention import RetentionInput, RetentionWorkflow
from workflows.schedules import model_retrain_input
from workflows.tutor_lifecycle import TutorLifecycleWorkflow

# Synthetic world for the periodic workflows: small, fixed seed (the unit tests' engine world uses the same sizes).
WORLD_SEED, WORLD_TUTORS, WORLD_DAYS, WORLD_SESSIONS_PER_DAY = 5, 8, 21, 40


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


async def retention_purge(ctx: Ctx) -> None:
    """The daily retention run: purges nothing on a young database, and writes its audit row."""
    q = ctx.settings.temporal_task_queue
    handle = await ctx.client.start_workflow(RetentionWorkflow.run, RetentionInput(), id=f"retention-{q}", task_queue=q)
    await handle.result()
    await ctx.rec.save(handle, "retention")


SPINE = [
    Scenario(("tutor_lifecycle_two_signals",), lifecycle_two_signals),
    Scenario(("sweep_pending_sessions",), sweep_pending),
    Scenario(("retention",), retention_purge),
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


async def model_retrain(ctx: Ctx) -> None:
    """The daily retraining on a churn-rich world: a candidate trained and registered, promoted (no live model
    yet), the day's prediction rows scored with it."""
    q = ctx.settings.temporal_task_queue
    assert ctx.as_of is not None
    inp = model_retrain_input(ctx.settings)
    inp.day = ctx.as_of.date().isoformat()
    handle = await ctx.client.start_workflow(ModelRetrainWorkflow.run, inp, id=f"model-retrain-{q}-{inp.day}",
                                             task_queue=q)
    result = await handle.result()
    assert result.promotion is not None and result.promotion.promoted and result.scoring.scored > 0, result
    log(f"    retrain: {result.trained.version} {result.promotion.reason}; scored {result.scoring.scored}")
    await ctx.rec.save(handle, "model_retrain")


MODEL = Scenario(("model_retrain",), model_retrain)


async def _record_model(rec: Recorder, env: WorkflowEnvironment, folder: Path, executor: ThreadPoolExecutor,
                        sink_port: int) -> None:
    world = folder / "model_world"
    world.mkdir()
    log("  [dev server] model world (tests/integration/model_world.py)")
    url = await asyncio.to_thread(build_template, world)
    # One grid point: the history's shape (train, decide, score) does not depend on how long tuning takes.
    settings = make_settings(folder, "model", sink_port).model_copy(
        update={"database_url": url, "models_dir": folder / "models", "model_grid_points": 1})
    engine = get_engine(url)
    with session_scope(engine) as db:  # the midnight rollup's rows, which the model's scores go onto
        evaluate_population(db, as_of=MODEL_WORLD_END, rules=active_scoring_rules(settings.rules_dir))
    async with workflow_worker(env.client, settings, executor):
        log(f"  [dev server] {MODEL.run.__name__}")
        await MODEL.run(Ctx(env, settings, engine, rec, as_of=MODEL_WORLD_END))
    engine.dispose()


async def record_dev_server(rec: Recorder, folder: Path, executor: ThreadPoolExecutor, sink_port: int) -> None:
    spine = [s for s in SPINE if rec.wants(s.names)]
    world = rec.wants(WORLD.names)
    model = rec.wants(MODEL.names)
    if not spine and not world and not model:
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
        if model:
            await _record_model(rec, env, folder, executor, sink_port)
    finally:
        await env.shutdown()
