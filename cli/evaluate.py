"""Starting evaluations from the command line (after a backfill)."""
from __future__ import annotations

from core.config import Settings
from core.temporal import connect, notify_sessions_ingested


async def signal_all_tutors(settings: Settings, tutor_ids: list[str]) -> None:
    """Signal-with-start every tutor's lifecycle workflow so it evaluates as of now and starts interventions.

    If Temporal is unreachable nothing is lost: the sessions stay pending and the worker's sweep picks them up.
    """
    try:
        client = await connect(settings)
    except Exception as exc:  # noqa: BLE001
        print(f"Temporal at {settings.temporal_address} unreachable ({exc}); the sweep will evaluate when a worker runs")
        return
    for start in range(0, len(tutor_ids), 50):
        chunk = tutor_ids[start:start + 50]
        await notify_sessions_ingested(client, {t: [] for t in chunk}, task_queue=settings.temporal_task_queue)
        print(f"signalled {min(start + 50, len(tutor_ids))}/{len(tutor_ids)} tutor workflows", flush=True)
