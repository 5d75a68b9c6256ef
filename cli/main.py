"""The `tutorpulse` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

from cli.importer import add_parser as add_import
from cli.first_session import add_parser as add_first_sessions
from cli.model import add_parser as add_model
from cli.synth_report import add_parser as add_synth_report
from cli.users import add_parser as add_users
from core.config import get_settings


def _db_upgrade(args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, args.revision)
    print(f"database at {settings.database_url.split('@')[-1]} is at {args.revision}")
    return 0


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    # Open live-update streams (web/live.py) would otherwise hold a restart for their whole lifetime.
    uvicorn.run("api.main:create_app", factory=True, host=args.host or settings.api_host,
                port=args.port or settings.api_port, log_level="info", timeout_graceful_shutdown=5)
    return 0


def _worker(_args: argparse.Namespace) -> int:
    from worker import run_worker

    asyncio.run(run_worker())
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from cli.evaluate import evaluate_recent, signal_all_tutors
    from core.db import get_engine
    from core.migrate import upgrade
    from synth.backfill import backfill

    from rules.loader import RulesError
    from synth.scenario import load_scenario

    settings = get_settings()
    try:
        scenario = load_scenario(args.scenario)
    except RulesError as exc:
        print(f"INVALID scenario\n{exc}", file=sys.stderr)
        return 2
    # A scenario given explicitly sets the volume; otherwise the settings do (the demo's knobs).
    volume = scenario.scenario.volume if args.scenario else None
    upgrade(settings.database_url)
    report = backfill(get_engine(settings.database_url), days=args.days, seed=args.seed,
                      n_tutors=args.tutors or (volume.n_tutors if volume else settings.synth_tutors),
                      sessions_per_day=args.sessions_per_day or (volume.sessions_per_day if volume else settings.synth_sessions_per_day),
                      end=args.end, scenario=args.scenario)
    print(report)
    if not args.no_evaluate:
        # Rank the population first (tier cut-offs), then let each tutor's workflow evaluate and decide.
        evaluate_recent(settings, end=report.end)
        asyncio.run(signal_all_tutors(settings, report.tutor_ids))
    return 0


def _evaluate_all(args: argparse.Namespace) -> int:
    from cli.evaluate import evaluate_all
    from core.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    evaluate_all(settings, as_of=args.as_of, review=args.review, trends=args.trends)
    return 0


def _synth_live(args: argparse.Namespace) -> int:
    from core.temporal import connect
    from workflows.schedules import ensure_synth_schedule, synth_schedule_id

    async def run() -> None:
        settings = get_settings()
        client = await connect(settings)
        if args.stop:
            await client.get_schedule_handle(synth_schedule_id(settings)).pause(note="stopped from the CLI")
            print("live synthetic feed paused")
        else:
            await ensure_synth_schedule(client, settings)
            await client.get_schedule_handle(synth_schedule_id(settings)).unpause()
            print(f"live synthetic feed: a tick every {settings.synth_tick_seconds}s (schedule {synth_schedule_id(settings)})")

    asyncio.run(run())
    return 0


def _rules_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rules.interventions import load_intervention_rules
    from rules.loader import RulesError
    from rules.scoring import load_scoring_rules

    rules_dir = get_settings().rules_dir
    from rules.first_session import load_first_session_rules

    paths = [Path(p) for p in args.files] or [rules_dir / "scoring.yaml", rules_dir / "interventions.yaml",
                                              rules_dir / "first_session.yaml"]
    failed = 0
    for path in paths:
        loader = (load_scoring_rules if "scoring" in path.name else
                  load_first_session_rules if "first_session" in path.name else load_intervention_rules)
        try:
            rules = loader(path)
        except (RulesError, OSError) as exc:
            failed += 1
            print(f"INVALID {path}\n{exc}", file=sys.stderr)
            continue
        print(f"ok {path}: {rules.version_label} sha256:{rules.hash[:12]}")
    return 1 if failed else 0


def _mailsink(args: argparse.Namespace) -> int:
    from domain.notifications.sink import run_mail_sink

    run_mail_sink(get_settings(), host=args.host, port=args.port, mail_dir=args.dir)
    return 0


def _demo(_args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo()


def _aware_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a zone, e.g. {value}+00:00")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tutorpulse", description="Tutor performance evaluation and retention.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="run everything locally: Temporal dev server, worker, API, synthetic feed").set_defaults(func=_demo)
    sub.add_parser("worker", help="run a Temporal worker (scale out by running more)").set_defaults(func=_worker)
    api = sub.add_parser("api", help="serve the API and pages")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.set_defaults(func=_api)
    sink = sub.add_parser("mailsink", help="local SMTP server storing every email as a file (the demo starts one)")
    sink.add_argument("--host", help="listen address (default: SMTP_HOST)")
    sink.add_argument("--port", type=int, help="listen port (default: SMTP_PORT; 0 picks a free one)")
    sink.add_argument("--dir", type=Path, help="where messages are stored (default: MAIL_DIR)")
    sink.set_defaults(func=_mailsink)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply migrations")
    up.add_argument("--revision", default="head")
    up.set_defaults(func=_db_upgrade)

    rules = sub.add_parser("rules", help="rules files").add_subparsers(dest="rules_command", required=True)
    check = rules.add_parser("check", help="validate rules files (schema, fields, actions, compile, golden tests)")
    check.add_argument("files", nargs="*", help="files to check (default: the active ones in rules/)")
    check.set_defaults(func=_rules_check)

    ev = sub.add_parser("evaluate", help="evaluations").add_subparsers(dest="evaluate_command", required=True)
    ev_all = ev.add_parser("all", help="re-evaluate every tutor now (what the daily rollup runs)")
    ev_all.add_argument("--as-of", type=_aware_datetime, help="evaluation time (ISO 8601 with zone; default now)")
    ev_all.add_argument("--review", action="store_true", help="recompute the tier cut-offs from the population first")
    ev_all.add_argument("--trends", action="store_true", help="also store the weekly 7-day moving averages")
    ev_all.set_defaults(func=_evaluate_all)

    synth = sub.add_parser("synth", help="synthetic data").add_subparsers(dest="synth_command", required=True)
    bf = synth.add_parser("backfill", help="simulate N days of history and ingest it")
    bf.add_argument("--days", type=int, default=30)
    bf.add_argument("--seed", type=int, default=get_settings().synth_seed)
    bf.add_argument("--tutors", type=int)
    bf.add_argument("--sessions-per-day", type=int)
    bf.add_argument("--end", type=_aware_datetime, help="business time the history ends at (ISO 8601 with zone; default now)")
    bf.add_argument("--scenario", type=Path, help="scenario YAML (default: synth/scenarios/default.yaml)")
    bf.add_argument("--no-evaluate", action="store_true", help="do not signal tutor workflows afterwards")
    bf.set_defaults(func=_backfill)
    add_synth_report(synth)
    live = synth.add_parser("live", help="start (or --stop) the live feed schedule")
    live.add_argument("--stop", action="store_true")
    live.set_defaults(func=_synth_live)
    add_import(sub)
    add_model(sub)
    add_first_sessions(sub)
    add_users(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
