"""`tutorpulse first-sessions train|score`: the first-session model (PRD Model 2) from the command line.

train: builds the rated first sessions of the window, trains the logistic regression, registers it and lets the
champion/challenger check decide whether it goes live. Labels are the product's own ratings: no truth involved.
score: posts a JSON file of upcoming first sessions through the same service as POST
/api/v1/first-sessions/risk (alerts and reminders included; --dry-run stores nothing).

Exit codes: 0 done, 1 some bookings refused (score), 2 the request cannot be carried out (too little data, no
live model, unreadable file).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from cli.arguments import iso_day, split_days
from core.config import Settings, get_settings

COEFFICIENTS_SHOWN = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    fs = sub.add_parser("first-sessions", help="the first-session model: train it, score upcoming first sessions")
    cmds = fs.add_subparsers(dest="first_sessions_command", required=True)
    train = cmds.add_parser("train", help="train on recent rated first sessions, register, champion/challenger")
    train.add_argument("--days", type=split_days, default=90, help="session days to learn from (default 90)")
    train.add_argument("--end", type=iso_day, help="last session day, YYYY-MM-DD (default: the last complete day)")
    train.add_argument("--no-promote", action="store_true", help="register the candidate only")
    train.set_defaults(func=train_command)
    score = cmds.add_parser("score", help="score upcoming first sessions from a JSON file (a booking or a list)")
    score.add_argument("file", type=Path, help="JSON: {booking_id, tutor_id, student_id, subject, scheduled_start}")
    score.add_argument("--dry-run", action="store_true", help="score and report; store no alert or reminder")
    score.set_defaults(func=score_command)


def _say(line: str) -> None:
    print(line, flush=True)


def train_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from core.db import get_engine, session_scope
    from core.migrate import upgrade
    from core.types import utcnow
    from domain.first_sessions.training import decide_promotion, train_candidate
    from domain.model_registry.service import RegistryError
    from ml.first_session_model import NotEnoughData

    settings = settings or get_settings()
    upgrade(settings.database_url)
    now = utcnow()
    try:
        with session_scope(get_engine(settings.database_url)) as db:
            candidate = train_candidate(db, settings=settings, now=now, end=args.end, days=args.days, progress=_say)
            _say("strongest effects (odds of a poor first session):")
            for c in candidate.training.model.coefficients()[:COEFFICIENTS_SHOWN]:
                _say(f"  {c['text']}")
            if args.no_promote:
                _say(f"{candidate.row.version} stays a candidate (--no-promote)")
                return 0
            decision = decide_promotion(db, candidate, settings=settings, now=now)
            _say(f"decision: {decision.decision['outcome']}: {decision.decision['reason']}")
    except (NotEnoughData, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _bookings(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"{path}: expected a booking object or a non-empty list of them")
    return items


def score_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from core.db import get_engine, session_scope
    from core.errors import InputError
    from core.migrate import upgrade
    from core.types import utcnow
    from domain.first_sessions import service
    from domain.first_sessions.models import BookingIn
    from rules.first_session import active_first_session_rules
    from rules.scoring import active_scoring_rules

    settings = settings or get_settings()
    try:
        items = _bookings(args.file)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    rules, scoring = active_first_session_rules(settings.rules_dir), active_scoring_rules(settings.rules_dir).spec
    refused = 0
    with session_scope(get_engine(settings.database_url)) as db:
        for n, raw in enumerate(items, start=1):
            try:
                booking = BookingIn.model_validate(raw)
                # A refused booking is refused before anything is written, so it leaves the others as they are.
                r = service.assess_booking(db, booking, rules=rules, scoring=scoring, models_dir=settings.models_dir,
                                           now=utcnow())
            except service.ModelUnavailable as exc:
                print(f"error: {exc}", file=sys.stderr)
                db.rollback()
                return 2
            except (ValidationError, InputError, service.UnknownRecord, service.BookingConflict) as exc:
                refused += 1
                print(f"#{n} {raw.get('booking_id', '?')}: refused: {exc}", file=sys.stderr)
                continue
            if not args.dry_run:
                db.commit()  # each stored booking stands on its own
            reasons = "; ".join(f["text"] for f in r.model_dump()["factors"])
            _say(f"#{n} {r.id}: {r.status}, P(poor) {r.probability:.2f}"
                 f"{' ALERT' if r.alert else ''}{f' (reminder {r.reminder_id})' if r.reminder_id else ''}"
                 f"{f' — {reasons}' if reasons else ''}")
        if args.dry_run:
            db.rollback()
            _say("dry run: nothing stored")
    return 1 if refused else 0
