"""kill -9 of the worker process while sessions are being ingested loses no evaluation and duplicates no
intervention, on SQLite and PostgreSQL, against the real Temporal dev server."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention
from domain.sessions.models import TutoringSession
from tests.factories import seed_people
from tests.integration.pipeline_helpers import eventually, troubled_history
from workflows.schedules import sweep_schedule_id

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(settings: Settings, address: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "TEMPORAL_ADDRESS": address,
           "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue, "SWEEP_INTERVAL_SECONDS": "5", "SWEEP_GRACE_SECONDS": "2"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as db:
        total = db.execute(select(func.count()).select_from(TutoringSession)).scalar_one()
        pending = db.execute(select(func.count()).select_from(TutoringSession)
                             .where(TutoringSession.evaluated_at.is_(None))).scalar_one()
    return total, pending


async def test_kill_minus_nine_loses_nothing_and_duplicates_nothing(
        engine: Engine, settings: Settings, temporal_env: WorkflowEnvironment, temporal_client, tmp_path: Path) -> None:  # noqa: ANN001
    tutors = seed_people(engine, tutors=4, students=4, tag=settings.temporal_task_queue)
    address = temporal_env.client.service_client.config.target_host
    now = utcnow()
    batches = [s for i, t in enumerate(tutors) for s in troubled_history(t, now, student=f"student_{i + 1}")]
    app = create_app(settings)
    app.state.temporal = temporal_env.client
    log = tmp_path / "worker.log"
    worker = _start_worker(settings, address, log)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp") as api:
            for i, body in enumerate(batches):
                r = await api.post("/api/v1/sessions", json=body)
                assert r.status_code == 201, r.text
                if i == len(batches) // 3:
                    await asyncio.sleep(1.5)  # let evaluations and intervention workflows get going ...
                    worker.send_signal(signal.SIGKILL)  # ... then pull the plug mid-stream
                    worker.wait()
            total, pending = _counts(engine)
            assert total == len(batches) and pending > 0  # nobody is evaluating right now
            worker = _start_worker(settings, address, log)
            await eventually(lambda: _counts(engine)[1] == 0, timeout=90, what=f"all sessions evaluated (log {log})")

            def settled() -> list[tuple[str, str, int]] | None:
                with session_scope(engine) as db:
                    rows = db.execute(select(Intervention.tutor_id, Intervention.intervention_type, func.count())
                                      .group_by(Intervention.tutor_id, Intervention.intervention_type)).all()
                return rows if len({r[0] for r in rows}) == len(tutors) else None

            await eventually(settled, timeout=60, what="interventions for every tutor")

            async def workflows() -> list[str]:
                return [w.id async for w in temporal_env.client.list_workflows(
                    f"TaskQueue = '{settings.temporal_task_queue}' AND WorkflowType = 'InterventionWorkflow'")]

            def recorded() -> set[str]:
                with session_scope(engine) as db:
                    return set(db.execute(select(Intervention.intervention_id)).scalars())

            # An intervention started just before the kill may have its "record" activity stranded on the dead
            # worker until the activity timeout hands it to the new one: wait for it, then compare.
            deadline = asyncio.get_running_loop().time() + 90
            while set(listed := await workflows()) - recorded() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(1)
            with session_scope(engine) as db:
                rows = db.execute(select(Intervention.tutor_id, Intervention.intervention_type, func.count())
                                  .group_by(Intervention.tutor_id, Intervention.intervention_type)).all()
            assert all(n == 1 for _, _, n in rows), rows  # one intervention per tutor and type
            assert len(listed) == len(set(listed)) and set(listed) == recorded()  # one workflow per record
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        try:
            await temporal_env.client.get_schedule_handle(sweep_schedule_id(settings)).delete()
        except Exception:  # noqa: BLE001, S110 - absent if the worker never started properly
            pass
