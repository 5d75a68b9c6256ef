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

SWEEP_SCHEDULE_ID = "tutorpulse-sweep"
SYNTH_SCHEDULE_ID = "tutorpulse-synth-live"


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Create, or bring an existing schedule in line with the current settings."""
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        async def _replace(_inp: ScheduleUpdateInput) -> ScheduleUpdate:
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
    await _ensure(client, SWEEP_SCHEDULE_ID, _every(settings.sweep_interval_seconds, ScheduleActionStartWorkflow(
        SweepWorkflow.run, SweepInput(grace_seconds=settings.sweep_grace_seconds),
        id="sweep", task_queue=settings.temporal_task_queue)))


async def ensure_synth_schedule(client: Client, settings: Settings) -> None:
    await _ensure(client, SYNTH_SCHEDULE_ID, _every(settings.synth_tick_seconds, ScheduleActionStartWorkflow(
        SynthTickWorkflow.run, SynthTickInput(), id="synth-tick", task_queue=settings.temporal_task_queue)))
