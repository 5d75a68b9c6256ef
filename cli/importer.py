"""`tutorpulse import sessions FILE.csv`: load an external session log through the ingestion service.

Exit codes: 0 imported (or the dry run found nothing wrong), 1 refused (bad rows without --skip-bad) or a
batch failed, 2 the file or mapping cannot be used at all.
"""
from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings, get_settings

if TYPE_CHECKING:
    from domain.imports.sessions import ImportPlan

MAX_LISTED = 20  # problems printed; a file with thousands of bad rows usually has one or two causes


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    imports = sub.add_parser("import", help="load external logs (CSV)").add_subparsers(dest="import_command", required=True)
    p = imports.add_parser(
        "sessions", help="import a session log from a CSV file",
        description="Map the CSV's columns to session fields and ingest the rows (idempotent on session_id). "
                    "Columns named like a field (session_id, tutor_id, scheduled_start, ...) need no mapping.")
    p.add_argument("file", type=Path, help="CSV file with a header row")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="read FIELD from COLUMN (repeatable; overrides --mapping; FIELD= leaves a field unread)")
    p.add_argument("--mapping", type=Path, metavar="FILE.yaml",
                   help="YAML with 'columns: {field: column}' and optional 'timezone', 'timestamp_format'")
    p.add_argument("--timezone", help="IANA zone for timestamps without an offset, e.g. America/New_York")
    p.add_argument("--timestamp-format", help="strptime format when timestamps are not ISO 8601, e.g. '%%m/%%d/%%Y %%H:%%M'")
    p.add_argument("--delimiter", default=",", help="field separator (default ','; '\\t' or 'tab' for tab-separated)")
    p.add_argument("--create-missing", action="store_true",
                   help="create unknown tutors and students (name = id, placeholder email) instead of refusing")
    p.add_argument("--skip-bad", action="store_true", help="import the good rows and report the bad ones")
    p.add_argument("--dry-run", action="store_true", help="check everything and report the counts; write nothing")
    p.add_argument("--batch", type=_positive, default=2000, help="rows per transaction (default 2000)")
    p.set_defaults(func=import_sessions)


def import_sessions(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from core.db import get_engine, session_scope
    from core.migrate import upgrade
    from domain.imports.mapping import ColumnMapping, MappingError, load_mapping_file, merge, parse_map_args
    from domain.imports.sessions import plan_import, read_csv, write_import

    settings = settings or get_settings()
    try:
        base = load_mapping_file(args.mapping) if args.mapping else ColumnMapping()
        mapping = merge(base, parse_map_args(args.map), timezone=args.timezone, timestamp_format=args.timestamp_format)
        # A shell passes --delimiter '\t' as backslash-t; a tab-separated export is what that means.
        delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
        header, records = read_csv(args.file, delimiter=delimiter)
    except (MappingError, OSError) as exc:
        print(f"cannot import {args.file}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    engine = get_engine(settings.database_url)
    try:
        with session_scope(engine) as db:  # read-only: planning writes nothing
            plan = plan_import(db, header, records, mapping=mapping, create_missing=args.create_missing)
    except MappingError as exc:
        print(f"cannot import {args.file}: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"cannot import {args.file}: not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return 2
    except csv.Error as exc:
        print(f"cannot import {args.file}: malformed CSV: {exc}", file=sys.stderr)
        return 2

    print(f"read {plan.rows_read} rows from {args.file}: {len(plan.items)} good, {len(plan.bad_lines)} bad, "
          f"{plan.duplicates} repeated exactly; {len(plan.stored_ids)} already stored"
          + ("; session numbers derived per tutor-student pair" if plan.derived_numbers else ""), flush=True)
    if plan.problems and not args.skip_bad:
        print(f"REFUSED {args.file}: {len(plan.bad_lines)} bad rows; nothing was written. "
              "Fix them, or import the good rows with --skip-bad:", file=sys.stderr)
        _list_problems(plan)
        return 1
    if plan.problems:
        print(f"skipping {len(plan.bad_lines)} bad rows:", file=sys.stderr)
        _list_problems(plan)

    try:
        result = write_import(engine, plan, batch=args.batch, dry_run=args.dry_run, progress=lambda s: print(s, flush=True))
    except Exception as exc:  # noqa: BLE001 - any database error: say what is stored and how to resume
        print(f"import failed in a batch ({type(exc).__name__}: {exc}); earlier batches are stored and "
              "re-running the same command completes the import (rows already stored are skipped)", file=sys.stderr)
        return 1
    verb = "would create" if args.dry_run else "created"
    print(f"{'DRY RUN, nothing written: ' if args.dry_run else ''}{args.file}: {plan.rows_read} rows read, "
          f"{verb} {result.created} sessions, {result.existing} already stored, {len(plan.bad_lines)} skipped (bad), "
          f"{plan.duplicates} repeats; {verb} {result.tutors_created} tutors and {result.students_created} students")
    if result.created and not args.dry_run:
        print(_next_step(plan))
    return 0


def _list_problems(plan: ImportPlan) -> None:
    # One unknown tutor fills the list with one line per session; the ids themselves say more.
    for attr, ids in sorted(plan.unknown.items()):
        shown = ", ".join(sorted(ids)[:MAX_LISTED]) + (", ..." if len(ids) > MAX_LISTED else "")
        print(f"  {len(ids)} unknown {attr} value(s): {shown} (--create-missing creates them)", file=sys.stderr)
    for problem in sorted(plan.problems, key=lambda p: p.line)[:MAX_LISTED]:
        print(f"  {problem}", file=sys.stderr)
    if len(plan.problems) > MAX_LISTED:
        print(f"  ... and {len(plan.problems) - MAX_LISTED} more problems", file=sys.stderr)


def _next_step(plan: ImportPlan) -> str:
    """The imported sessions are pending (not evaluated). `evaluate all` scores them in-process, no Temporal.

    Metrics windows end at the evaluation time, so a log that ended in the past is scored as of the midnight
    after its last session; evaluating it as of now would find an empty recent window for everyone.
    """
    tutors = len(plan.tutor_ids)
    latest = plan.latest_start
    command = "tutorpulse evaluate all"
    if latest is not None and latest < datetime.now(UTC) - timedelta(days=1):
        end = datetime.combine(latest.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
        command += f" --as-of {end.isoformat()}"
    return (f"next: `{command}` scores the {tutors} imported tutors in-process (no Temporal needed); "
            "a running worker's sweep also evaluates pending sessions")
