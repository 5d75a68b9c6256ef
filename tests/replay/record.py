"""Records the workflow histories that tests/replay/test_replay.py replays against the current code.

    python -m tests.replay.record [--out tests/replay/histories] [--only NAME[,NAME...]]   (or: make histories)

Runs one realistic scenario per workflow type with the real worker (build_worker: real activities, a temporary
SQLite database migrated with Alembic, a local mail sink) and saves each workflow's history as <name>.json:

* time-skipping server (temporal-test-server), for the intervention types whose SLAs and follow-ups are days
  long: H1 reminder + escalation, H4 claim/complete, an H3 PIP (approval, kickoff, extension, weekly check-ins,
  outcome review), A1 by email (tutor responds; another cancelled by the rules), A2 with its training
  follow-up, A4 whose follow-up escalates to a manager review. Also an H1 run by the workflow as it was
  *before* the reminder patch (tests/replay/variants.py): ``human_task_pre_reminder_patch.json``.
* dev server (temporal), for the rest: a tutor's lifecycle with two session signals (still running: its
  current history), the pending-session sweep, and on a small synthetic world the monthly review, a daily
  rollup, the weekly trends and a live synth tick; on a churn-rich world (tests/integration/model_world.py) the
  daily churn-model retraining (train, promote, score).

Re-recording replaces saved histories: see tests/replay/README.md for when (almost never) to do it. ``--only``
records just the named histories (e.g. the first one of a new workflow type) and leaves the others alone.

This module is the entry point (``record``, ``main`` and the CLI); the scenarios live in
``scenarios_skipping.py`` (time-skipping server) and ``scenarios_dev.py`` (dev server), their shared plumbing
in ``common.py``.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from domain.notifications.sink import start_mail_sink
from tests.replay.common import Recorder, log
from tests.replay.scenarios_dev import MODEL, SPINE, WORLD, record_dev_server
from tests.replay.scenarios_skipping import PRE_PATCH, SKIPPING, record_skipping

DEFAULT_OUT = Path(__file__).resolve().parent / "histories"

ALL_NAMES = [n for s in [*SKIPPING, PRE_PATCH, *SPINE, WORLD, MODEL] for n in s.names]


async def record(out: Path, only: set[str] | None = None) -> list[str]:
    unknown = (only or set()) - set(ALL_NAMES)
    if unknown:
        raise SystemExit(f"unknown history name(s) {sorted(unknown)}; known: {', '.join(ALL_NAMES)}")
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(out=out, only=only)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tp-replay-") as tmp, ThreadPoolExecutor(max_workers=8) as executor:
        folder = Path(tmp)
        sink = start_mail_sink(folder / "mail")
        try:
            log(f"recording workflow histories into {out}")
            await record_skipping(rec, folder, executor, sink.port)
            await record_dev_server(rec, folder, executor, sink.port)
        finally:
            sink.stop()
    log(f"saved {len(rec.saved)} histories in {time.monotonic() - started:.0f}s")
    return rec.saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.replay.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for <name>.json (default: %(default)s)")
    parser.add_argument("--only", help="comma-separated history names to (re-)record; the others are left alone")
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
    asyncio.run(record(args.out, only))


if __name__ == "__main__":
    main()
