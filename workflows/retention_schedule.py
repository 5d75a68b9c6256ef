"""The retention run's Temporal Schedule (client side; never imported by workflow code)."""
from __future__ import annotations

from temporalio.client import Client, ScheduleActionStartWorkflow

from core.config import Settings
from workflows.retention import RetentionInput, RetentionWorkflow
from workflows.schedules import _cron, _ensure


def retention_schedule_id(settings: Settings) -> str:
    return f"tutorpulse-retention-{settings.temporal_task_queue}"


async def ensure_retention_schedule(client: Client, settings: Settings) -> None:
    """Daily purge (settings.retention_cron, UTC); each run's "today" is its own start time."""
    q = settings.temporal_task_queue
    await _ensure(client, retention_schedule_id(settings), _cron(settings.retention_cron, ScheduleActionStartWorkflow(
        RetentionWorkflow.run, RetentionInput(), id=f"retention-{q}", task_queue=q)))
