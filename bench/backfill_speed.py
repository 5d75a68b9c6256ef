"""How long a full synthetic backfill takes: the first thing anyone runs, and what `make demo` waits on.

Prints `name: value unit` lines. Every database is fresh and thrown away: a temporary SQLite file, and a
`tp_bench_<random>` PostgreSQL database when a trust-auth server answers on 127.0.0.1:5432.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The checkout's code, not whatever version of tutorpulse the interpreter happens to have installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.db import get_engine  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from synth.backfill import backfill  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
N_TUTORS = 250
SESSIONS_PER_DAY = 3000


def figure(name: str, value: float, unit: str = "") -> None:
    print(f"{name}: {value:,.{0 if abs(value) >= 100 else 2}f} {unit}".rstrip(), flush=True)


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS); the process-wide high-water mark, so it only ever grows.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def every_tenth_day(line: str) -> None:
    """A backfill's progress, one line per ten simulated days: a long world otherwise prints hundreds."""
    if line.startswith("day ") and line.split()[1].split("/")[0].endswith("0"):
        print(f"#   {line}", flush=True)


def machine_reference_s() -> float:
    """Seconds for a fixed pure-Python loop (10 million additions), best of three. This VM's speed moves a lot
    between sessions and within one, so a bench's timings are only comparable next to this figure."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def _pg_admin():  # noqa: ANN202
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2)


def postgres_reachable() -> bool:
    try:
        with _pg_admin():
            return True
    except Exception:  # noqa: BLE001 - any failure means "skip PostgreSQL", not "fail the bench"
        return False


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A migrated, empty database URL of ``kind`` ('sqlite' or 'postgresql'), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tp_bench_") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade(url)
            try:
                yield url
            finally:
                get_engine(url).dispose()
        return
    name = f"tp_bench_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        get_engine(url).dispose()
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_kinds() -> list[str]:
    if postgres_reachable():
        return ["sqlite", "postgresql"]
    print("# PostgreSQL on 127.0.0.1:5432 unreachable: SQLite only", flush=True)
    return ["sqlite"]


def run(days: int) -> None:
    print(f"# backfill of {days} days, {N_TUTORS} tutors, {SESSIONS_PER_DAY:,} sessions/day, "
          "through the same ingestion services as the API", flush=True)
    for kind in database_kinds():
        with fresh_database(kind) as url:
            started = time.perf_counter()
            report = backfill(get_engine(url), days=days, seed=1, n_tutors=N_TUTORS,
                              sessions_per_day=SESSIONS_PER_DAY, progress=lambda _line: None)
            seconds = time.perf_counter() - started
        tag = "sqlite" if kind == "sqlite" else "postgres"
        figure(f"backfill_{days}d_{tag}_seconds", seconds, "s")
        figure(f"backfill_{days}d_{tag}_sessions", report.sessions_created, "sessions")
        figure(f"backfill_{days}d_{tag}_rows", report.rows_created, "rows")
        figure(f"backfill_{days}d_{tag}_rows_per_second", report.rows_created / seconds, "rows/s")
        figure(f"backfill_{days}d_{tag}_sessions_per_second", report.sessions_created / seconds, "sessions/s")
    figure("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of history to simulate (default 30)")
    args = parser.parse_args()
    if not 1 <= args.days <= 365:
        parser.error("--days must be between 1 and 365")
    run(args.days)
