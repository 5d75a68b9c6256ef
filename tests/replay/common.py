"""Shared plumbing for recording replay histories (tests/replay/record.py and its scenario modules).

The pieces every scenario uses: locating the Temporal server binaries, progress output, the ``Recorder`` that
writes ``<name>.json`` (honouring ``--only``), the ``Scenario`` and ``Ctx`` types, a worker's settings over a
fresh Alembic-migrated SQLite database, intervention plans built from the real rules file, the production worker
(optionally with other workflow classes), and helpers to read an intervention row, ingest sessions and wait for
a running workflow's history to settle.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.config import Settings
from core.db import session_scope
from core.migrate import upgrade
from core.temporal import group_by_tutor
from core.types import utcnow
from domain.interventions.models import Intervention
from domain.interventions.planning import build_plan, intervention_id
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from rules.interventions import active_intervention_rules
from worker import build_worker
from workflows.inputs import InterventionPlan

BIN = Path(sys.executable).parent


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
