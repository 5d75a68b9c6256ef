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
from workflows.inputs import SweepInput, SynthTickInput
from workflows.periodic import SweepWorkflow, SynthTickWorkflow


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
