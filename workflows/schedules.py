"""Temporal Schedules for periodic work (client side; never imported by workflow code)."""
from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.config import Settings
from workflows.inputs import ModelRetrainInput, RollupInput, SweepInput, SynthTickInput, TrendsInput
from workflows.model import ModelRetrainWorkflow
from workflows.periodic import PopulationRollupWorkflow, SweepWorkflow, SynthTickWorkflow, WeeklyTrendsWorkflow


def sweep_schedule_id(settings: Settings) -> str:
    # Per task queue: deployments (or test runs) sharing a Temporal namespace keep their own sweep.
    return f"tutorpulse-sweep-{settings.temporal_task_queue}"


def synth_schedule_id(settings: Settings) -> str:
    return f"tutorpulse-synth-live-{settings.temporal_task_queue}"


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Create, or bring an existing schedule in line with the current settings."""
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        async def _replace(inp: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = inp.description.schedule.state  # an operator's pause survives a worker restart
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(_replace)


def _every(seconds: int, action: ScheduleActionStartWorkflow) -> Schedule:
    return Schedule(
        action=action,
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=seconds))]),
        # A slow run is not stacked with the next one: skip overlapping ticks.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_sweep_schedule(client: Client, settings: Settings) -> None:
    await _ensure(client, sweep_schedule_id(settings), _every(settings.sweep_interval_seconds, ScheduleActionStartWorkflow(
        SweepWorkflow.run, SweepInput(grace_seconds=settings.sweep_grace_seconds),
        id=f"sweep-{settings.temporal_task_queue}", task_queue=settings.temporal_task_queue)))


async def ensure_synth_schedule(client: Client, settings: Settings) -> None:
    await _ensure(client, synth_schedule_id(settings), _every(settings.synth_tick_seconds, ScheduleActionStartWorkflow(
        SynthTickWorkflow.run, SynthTickInput(), id=f"synth-tick-{settings.temporal_task_queue}", task_queue=settings.temporal_task_queue)))


def evaluation_schedule_ids(settings: Settings) -> dict[str, str]:
    q = settings.temporal_task_queue
    return {"daily_rollup": f"tutorpulse-daily-rollup-{q}", "weekly_trends": f"tutorpulse-weekly-trends-{q}",
            "monthly_review": f"tutorpulse-monthly-review-{q}"}


def _cron(expression: str, action: ScheduleActionStartWorkflow) -> Schedule:
    return Schedule(action=action, spec=ScheduleSpec(cron_expressions=[expression]),
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP))


async def ensure_evaluation_schedules(client: Client, settings: Settings) -> None:
    """PRD "Evaluation Frequency": daily rollup, weekly 7-day moving averages, monthly tier review (cron in UTC)."""
    q, ids = settings.temporal_task_queue, evaluation_schedule_ids(settings)
    await _ensure(client, ids["daily_rollup"], _cron(settings.daily_rollup_cron, ScheduleActionStartWorkflow(
        PopulationRollupWorkflow.run, RollupInput(), id=f"daily-rollup-{q}", task_queue=q)))
    await _ensure(client, ids["weekly_trends"], _cron(settings.weekly_trends_cron, ScheduleActionStartWorkflow(
        WeeklyTrendsWorkflow.run, TrendsInput(), id=f"weekly-trends-{q}", task_queue=q)))
    await _ensure(client, ids["monthly_review"], _cron(settings.monthly_review_cron, ScheduleActionStartWorkflow(
        PopulationRollupWorkflow.run, RollupInput(review=True), id=f"monthly-review-{q}", task_queue=q)))


def model_retrain_schedule_id(settings: Settings) -> str:
    return f"tutorpulse-model-retrain-{settings.temporal_task_queue}"


def model_retrain_input(settings: Settings) -> ModelRetrainInput:
    return ModelRetrainInput(days=settings.model_training_days, train_timeout_seconds=settings.model_train_timeout_seconds,
                             heartbeat_seconds=settings.model_train_heartbeat_seconds,
                             score_timeout_seconds=settings.model_score_timeout_seconds)


async def ensure_model_retrain_schedule(client: Client, settings: Settings) -> None:
    """Daily churn-model retraining (cron in UTC); each run's workflow id is model-retrain-<queue>-<scheduled time>."""
    q = settings.temporal_task_queue
    await _ensure(client, model_retrain_schedule_id(settings), _cron(settings.model_retrain_cron, ScheduleActionStartWorkflow(
        ModelRetrainWorkflow.run, model_retrain_input(settings), id=f"model-retrain-{q}", task_queue=q)))
