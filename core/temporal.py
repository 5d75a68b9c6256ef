"""Temporal client, workflow ids and the few client-side calls the API and CLI make."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from temporalio.client import Client

from core.config import Settings, get_settings
from workflows.inputs import SessionsIngested, TaskCommand, TaskView, TutorLifecycleInput

log = logging.getLogger(__name__)


async def connect(settings: Settings | None = None) -> Client:
    settings = settings or get_settings()
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


def tutor_workflow_id(tutor_id: str) -> str:
    return f"tutor-{tutor_id}"


async def notify_sessions_ingested(client: Client, by_tutor: dict[str, list[str]], *, task_queue: str,
                                   evaluations_per_run: int = 200) -> None:
    """Signal-with-start each tutor's lifecycle workflow; the workflow coalesces what arrives together."""
    for tutor_id, session_ids in by_tutor.items():
        await client.start_workflow(
            # By name: importing the workflow class here would make activities and workflows import in a circle.
            "TutorLifecycleWorkflow",
            TutorLifecycleInput(tutor_id=tutor_id, evaluations_per_run=evaluations_per_run),
            id=tutor_workflow_id(tutor_id),
            task_queue=task_queue,
            start_signal="sessions_ingested",
            start_signal_args=[SessionsIngested(session_ids=list(session_ids))],
        )


async def try_notify(client: Client | None, by_tutor: dict[str, list[str]], *, task_queue: str) -> bool:
    """Best effort after commit: a failure leaves the sessions pending and the sweep schedule re-signals them."""
    if client is None or not by_tutor:
        return client is not None
    try:
        await notify_sessions_ingested(client, by_tutor, task_queue=task_queue)
        return True
    except Exception:  # noqa: BLE001 - any failure here is recovered by the sweep, never lost
        log.warning("could not signal %d tutor workflows; the sweep will retry", len(by_tutor), exc_info=True)
        return False


TASK_UPDATES = ("claim", "unclaim", "assign", "approve", "complete", "cancel", "extend")


async def update_task(client: Client, intervention_id: str, update: str, cmd: TaskCommand) -> TaskView:
    """Runs one Update on an intervention's workflow (its id is the intervention id) and returns its new state.

    The workflow's validator refuses an illegal transition before anything is written: the caller gets
    WorkflowUpdateFailedError whose cause carries the reason. A closed workflow raises RPCError NOT_FOUND.
    """
    if update not in TASK_UPDATES:
        raise ValueError(f"unknown task update {update!r}; one of {TASK_UPDATES}")
    return await client.get_workflow_handle(intervention_id).execute_update(update, cmd, result_type=TaskView)


def group_by_tutor(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for tutor_id, session_id in pairs:
        out.setdefault(tutor_id, []).append(session_id)
    return out
