"""The full 90-day backfill the ML baseline trains on: time and memory against the issue's budget.

Prints `name: value unit` lines and a PASS/FAIL per database against `< 180 s, < 2048 MB`. Each backfill runs
in a fresh spawned child process, so its peak RSS is that run's alone (ru_maxrss only ever grows within a
process, and a forked child would start from the parent's pages). Databases are fresh and thrown away, as in
backfill_speed.py, whose helpers this reuses.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# The checkout's code, not whatever version of tutorpulse the interpreter happens to have installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_speed import (  # noqa: E402
    N_TUTORS,
    SESSIONS_PER_DAY,
    database_kinds,
    figure,
    fresh_database,
    peak_rss_mb,
)

TARGET_SECONDS = 180.0
TARGET_RSS_MB = 2048.0


def _progress_every(days: int, step: int):  # noqa: ANN202
    """Keeps a 90-line log to one line per `step` days: enough to see it is alive, not enough to bury figures."""
    def progress(line: str) -> None:
        if line.startswith("day "):
            done = int(line.split()[1].split("/")[0])
            if done % step and done != days:
                return
        print(f"#   {line}", flush=True)
    return progress


def backfill_in_child(url: str, days: int, seed: int) -> dict:
    """Runs in the spawned child: imports happen here so their memory is counted in this run's peak."""
    from core.db import get_engine
    from synth.backfill import backfill

    engine = get_engine(url)
    started = time.perf_counter()
    report = backfill(engine, days=days, seed=seed, n_tutors=N_TUTORS, sessions_per_day=SESSIONS_PER_DAY,
                      progress=_progress_every(days, 10))
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": seconds,
        "sessions": report.sessions_created,
        "feedback": report.feedback_created,
        "events": report.events_created,
        "rows": report.rows_created,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_one(url: str, days: int, seed: int) -> dict:
    # A new single-worker pool per run: the worker process lives for exactly one backfill.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(backfill_in_child, url, days, seed).result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="world seed (default 1)")
    parser.add_argument("--days", type=int, default=90, help="days of history (default 90)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    if not 1 <= args.days <= 365:
        parser.error("--days must be between 1 and 365")

    print(f"# backfill of {args.days} days, seed {args.seed}, {N_TUTORS} tutors, {SESSIONS_PER_DAY:,} sessions/day; "
          "each run in its own process", flush=True)
    kinds = ["sqlite"] if args.skip_postgres else database_kinds()
    verdicts: list[tuple[str, bool, str]] = []
    for kind in kinds:
        tag = "sqlite" if kind == "sqlite" else "postgres"
        print(f"# {tag}: starting", flush=True)
        with fresh_database(kind) as url:
            result = run_one(url, args.days, args.seed)
        name = f"backfill_{args.days}d_{tag}"
        figure(f"{name}_seconds", result["seconds"], "s")
        figure(f"{name}_sessions", result["sessions"], "sessions")
        figure(f"{name}_feedback", result["feedback"], "feedback")
        figure(f"{name}_events", result["events"], "events")
        figure(f"{name}_rows_per_second", result["rows"] / result["seconds"], "rows/s")
        figure(f"{name}_peak_rss", result["peak_rss_mb"], "MB")
        misses = []
        if result["seconds"] >= TARGET_SECONDS:
            misses.append(f"{result['seconds']:.0f} s >= {TARGET_SECONDS:.0f} s")
        if result["peak_rss_mb"] >= TARGET_RSS_MB:
            misses.append(f"{result['peak_rss_mb']:.0f} MB >= {TARGET_RSS_MB:.0f} MB")
        verdicts.append((tag, not misses, "; ".join(misses)))

    print(f"target: < {TARGET_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB", flush=True)
    for tag, ok, why in verdicts:
        print(f"{tag}: PASS" if ok else f"{tag}: FAIL ({why})", flush=True)
    return 0 if all(ok for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
