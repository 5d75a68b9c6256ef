"""Ingestion API throughput, end to end in-process: HTTP parsing, validation, reference checks, the insert.

Prints `name: value unit` lines. Temporal is pointed at a closed port on purpose, so the figures are what
storing costs; signalling is best effort after the commit (the sweep re-signals), and is not measured here.
Each database is fresh: a temporary SQLite file, and a throwaway PostgreSQL database when one is reachable.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path

# The checkout's code, not whatever version of tutorpulse the interpreter happens to have installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from api.main import create_app  # noqa: E402
from bench.backfill_speed import database_kinds, figure, fresh_database, peak_rss_mb  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import get_engine, session_scope  # noqa: E402
from domain.sessions.models import TutoringSession  # noqa: E402
from synth.backfill import backfill  # noqa: E402
from synth.live import generate_tick  # noqa: E402

SINGLES = 500
BATCH_SIZE = 500
BATCHES = 20
REPLAYS = 5
# Enough future business time that the simulated feed yields SINGLES + BATCHES * BATCH_SIZE fresh sessions.
FUTURE_DAYS = 5
PRD_SESSIONS_PER_DAY = 3000
PRD_RATE = PRD_SESSIONS_PER_DAY / 86_400
REQUEST_TIMEOUT = 60.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def payloads(url: str) -> tuple[int, list[dict]]:
    """The backfill's session count, and fresh sessions over the people it created, as the JSON a client posts."""
    engine = get_engine(url)
    report = backfill(engine, days=1, seed=1, n_tutors=250, sessions_per_day=PRD_SESSIONS_PER_DAY,
                      progress=lambda _line: None)
    batch = generate_tick(engine, tick_start=report.end, tick_end=report.end + timedelta(days=FUTURE_DAYS))
    needed = 1 + SINGLES + BATCHES * BATCH_SIZE
    if len(batch.sessions) < needed:
        raise SystemExit(f"the simulated feed gave {len(batch.sessions)} sessions, the bench needs {needed}")
    return report.sessions_created, [s.model_dump(mode="json") for s in batch.sessions[:needed]]


async def post(client: httpx.AsyncClient, body: dict | list[dict], expect: int) -> tuple[float, dict]:
    started = time.perf_counter()
    response = await client.post("/api/v1/sessions", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != expect:
        raise SystemExit(f"expected HTTP {expect}, got {response.status_code}: {response.text[:500]}")
    return elapsed, response.json()


async def measure(url: str, tag: str) -> None:
    backfilled, items = payloads(url)
    app = create_app(Settings(database_url=url, temporal_address="127.0.0.1:1"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=REQUEST_TIMEOUT) as client:
        # The first request pays one-off costs (dependency wiring, the failed Temporal connect): not a sample.
        await post(client, items[0], 201)
        singles = items[1:1 + SINGLES]
        latencies = []
        started = time.perf_counter()
        for item in singles:
            latencies.append((await post(client, item, 201))[0])
        single_rate = SINGLES / (time.perf_counter() - started)
        figure(f"{tag}_single_sessions_per_second", single_rate, "sessions/s")
        figure(f"{tag}_single_latency_p50", percentile(latencies, 0.50) * 1000, "ms")
        figure(f"{tag}_single_latency_p95", percentile(latencies, 0.95) * 1000, "ms")

        rest = items[1 + SINGLES:]
        batches = [rest[i * BATCH_SIZE:(i + 1) * BATCH_SIZE] for i in range(BATCHES)]
        batch_latencies = []
        started = time.perf_counter()
        for body in batches:
            elapsed, result = await post(client, body, 201)
            if result["created"] != BATCH_SIZE or result["evaluation"] != "pending":
                raise SystemExit(f"unexpected batch result: created={result['created']} evaluation={result['evaluation']}")
            batch_latencies.append(elapsed)
        batch_rate = BATCHES * BATCH_SIZE / (time.perf_counter() - started)
        figure(f"{tag}_batch{BATCH_SIZE}_sessions_per_second", batch_rate, "sessions/s")
        figure(f"{tag}_batch{BATCH_SIZE}_latency_p50", percentile(batch_latencies, 0.50) * 1000, "ms")

        replay_latencies = []
        for _ in range(REPLAYS):
            elapsed, result = await post(client, batches[0], 200)
            if result["existing"] != BATCH_SIZE:
                raise SystemExit(f"replay stored something: {result['created']} created")
            replay_latencies.append(elapsed)
        figure(f"{tag}_replay_batch{BATCH_SIZE}_latency_p50", percentile(replay_latencies, 0.50) * 1000, "ms")

    stored = 1 + SINGLES + BATCHES * BATCH_SIZE
    with session_scope(app.state.engine) as db:
        total = db.execute(select(func.count()).select_from(TutoringSession)).scalar_one()
    if total != backfilled + stored:
        raise SystemExit(f"{total} sessions in the database, expected {backfilled} backfilled + {stored} posted")
    figure(f"{tag}_sessions_in_database", total, "sessions")
    figure(f"{tag}_headroom_single_vs_prd", single_rate / PRD_RATE, "x")
    figure(f"{tag}_headroom_batch_vs_prd", batch_rate / PRD_RATE, "x")


def main() -> None:
    # The closed Temporal port is deliberate; its reconnect warning would only bury the figures.
    logging.getLogger("api.deps").setLevel(logging.ERROR)
    print("# ingestion API in-process (httpx ASGITransport); Temporal unreachable on purpose, so this measures "
          "storing only (sessions stay pending for the sweep)", flush=True)
    print(f"# PRD load: {PRD_SESSIONS_PER_DAY:,} sessions/day = {PRD_RATE:.3f} sessions/s", flush=True)
    for kind in database_kinds():
        with fresh_database(kind) as url:
            asyncio.run(measure(url, "sqlite" if kind == "sqlite" else "postgres"))
    figure("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
