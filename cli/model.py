"""`tutorpulse model train|evaluate|promote|list`: the churn model's registry from the command line.

Exit codes: 0 done, 1 the champion/challenger check refused a promotion, 2 the request cannot be carried out
(unknown version, empty database, a span too short to split, no synthetic world for --labels truth).

The CLI is a composition root: it may take the synthetic world's departure records (synth.label_feed) and hand
them to the product's training code as labels; the product itself never reads them.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from cli.arguments import iso_day, split_days
from core.config import Settings, get_settings
from synth.label_feed import churn_labels

CHURN = "churn"


class CommandError(Exception):
    """A request that cannot be carried out: printed, exit code 2."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="the churn model: train, evaluate, promote, list versions")
    cmds = model.add_subparsers(dest="model_command", required=True)

    def window(p: argparse.ArgumentParser) -> None:
        p.add_argument("--days", type=split_days, help="feature days to use (default: MODEL_TRAINING_DAYS, 90)")
        p.add_argument("--end", type=iso_day, help="last feature day, YYYY-MM-DD (default: the last complete UTC day)")
        p.add_argument("--labels", choices=("auto", "truth", "inactivity"), default="auto",
                       help="churn labels: the synthetic world's truth, the PRD inactivity rule, or auto (truth when "
                            "the database holds a synthetic world)")

    train = cmds.add_parser("train", help="train a candidate on the recent data, register it, champion/challenger")
    window(train)
    train.add_argument("--no-promote", action="store_true", help="register the candidate only; decide later")
    train.set_defaults(func=train_command)
    ev = cmds.add_parser("evaluate", help="per-horizon figures of a stored version on the current data's test split")
    ev.add_argument("version", nargs="?", help="model version (default: the live one)")
    window(ev)
    ev.set_defaults(func=evaluate_command)
    pr = cmds.add_parser("promote", help="make a version live if it beats the live one on current validation data")
    pr.add_argument("version")
    pr.add_argument("--force", action="store_true", help="promote even if it does not beat the live model")
    pr.add_argument("--reason", help="why (required with --force; recorded with who forced it)")
    window(pr)
    pr.set_defaults(func=promote_command)
    ls = cmds.add_parser("list", help="registered versions, newest first")
    ls.add_argument("--kind", default=None, help="churn | first_session (default: all)")
    ls.set_defaults(func=list_command)


def _run(args: argparse.Namespace, body, settings: Settings | None) -> int:  # noqa: ANN001
    from core.db import get_engine, session_scope
    from core.migrate import upgrade
    from domain.model_registry.service import RegistryError
    from ml.lifecycle import NotEnoughData

    settings = settings or get_settings()
    upgrade(settings.database_url)
    try:
        with session_scope(get_engine(settings.database_url)) as db:
            return body(db, args, settings)
    except (CommandError, NotEnoughData, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _labels(db, choice: str):  # noqa: ANN001, ANN202
    if choice == "inactivity":
        return None
    truth = churn_labels(db)
    if choice == "truth" and truth is None:
        raise CommandError("--labels truth: this database holds no synthetic world; use --labels inactivity")
    return truth


def _say(line: str) -> None:
    print(line, flush=True)


def _print_decision(decision: dict) -> None:
    figures = f"candidate {decision.get('candidate_auc')}"
    if decision.get("live_version"):
        figures += f", live {decision['live_version']} {decision.get('live_auc')}"
    _say(f"decision: {decision.get('outcome')} ({figures}; min gain {decision.get('min_gain')}): {decision.get('reason')}")


def _score_today(db, settings: Settings, version: str) -> None:  # noqa: ANN001
    """The new live model's scores on today's prediction rows, so pages show them without waiting for the
    daily run."""
    from core.types import utcnow
    from domain.model_registry import service as registry
    from domain.model_scoring.service import score_population
    from rules.scoring import active_scoring_rules

    row = registry.get_version(db, version)
    now = utcnow()
    n = score_population(db, model=registry.load_model(row, settings.models_dir), version=version, day=now.date(),
                         rules=active_scoring_rules(settings.rules_dir), now=now, progress=_say)
    _say(f"scored {n} tutors' predictions for {now.date()} with {version}")


def _train(db, args: argparse.Namespace, settings: Settings) -> int:  # noqa: ANN001
    from ml.lifecycle import decide_promotion, train_candidate

    truth = _labels(db, args.labels)
    row, _run, segs = train_candidate(db, settings=settings, truth=truth, end=args.end,
                                      days=args.days or settings.model_training_days, progress=_say)
    if args.no_promote:
        _say(f"{row.version} stays a candidate (--no-promote): `tutorpulse model promote {row.version}` decides")
        return 0
    promotion = decide_promotion(db, row, segs, settings=settings)
    _print_decision(promotion.decision)
    db.commit()  # the new version and its decision are kept even if scoring fails below
    if promotion.promoted:
        _score_today(db, settings, row.version)
    return 0


def train_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    return _run(args, _train, settings)


def _version(db, version: str | None):  # noqa: ANN001, ANN202
    from domain.model_registry import service as registry

    row = registry.get_version(db, version) if version else registry.live_version(db, CHURN)
    if row is None:
        raise CommandError(f"unknown model version {version!r}" if version else "no live churn model: train one first")
    return row


def _current_segments(db, args: argparse.Namespace, settings: Settings):  # noqa: ANN001, ANN202
    from ml.lifecycle import build_segments, data_window

    start, end = data_window(db, end=args.end, days=args.days or settings.model_training_days)
    return build_segments(db, settings=settings, start=start, end=end, truth=_labels(db, args.labels), progress=_say)


def _evaluate(db, args: argparse.Namespace, settings: Settings) -> int:  # noqa: ANN001
    from domain.model_registry import service as registry
    from ml.labels import HORIZONS
    from ml.pipeline import horizon_reports

    row = _version(db, args.version)
    _say(f"{row.version} ({row.status}; trained on {row.data_start}..{row.data_end}, {row.label_source} labels)")
    segs = _current_segments(db, args, settings)
    model = registry.load_model(row, settings.models_dir)
    if tuple(model.names) != tuple(segs.frame.names):
        raise CommandError(f"{row.version} was trained on other features than the current pipeline's: it cannot be "
                           "evaluated on current data")
    figures = horizon_reports(model, segs, 2)
    for h in HORIZONS:
        r = figures.get(f"xgb_{h}d")
        if r is None:
            _say(f"test {h}d: no closed label window")
            continue
        _say(f"test {h}d: n {int(r['n'])}, churned {int(r['positives'])}, AUC {r['auc']:.3f}, precision@10% "
             f"{r['precision_at_10']:.3f}, lift@10% {r['lift_at_10']:.2f}, Brier {r['brier']:.4f}, "
             f"Brier skill {r['brier_skill']:.3f}, ECE {r['ece']:.4f}")
    return 0


def evaluate_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    return _run(args, _evaluate, settings)


def _promote(db, args: argparse.Namespace, settings: Settings) -> int:  # noqa: ANN001
    from domain.model_registry.models import ModelStatus
    from ml.lifecycle import decide_promotion

    if args.force and not (args.reason or "").strip():
        raise CommandError("--force needs --reason TEXT: a forced promotion records who and why")
    row = _version(db, args.version)
    if row.status == ModelStatus.live.value:
        _say(f"{row.version} is already live")
        return 0
    segs = _current_segments(db, args, settings)
    try:
        promotion = decide_promotion(db, row, segs, settings=settings, force=args.force, reason=args.reason,
                                     actor=getpass.getuser())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    _print_decision(promotion.decision)
    db.commit()
    if not promotion.promoted:
        print(f"refused: {promotion.decision.get('reason')} (use --force --reason TEXT to promote anyway)",
              file=sys.stderr)
        return 1
    _say(f"{row.version} is live")
    _score_today(db, settings, row.version)
    return 0


def promote_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    return _run(args, _promote, settings)


def _list(db, args: argparse.Namespace, _settings: Settings) -> int:  # noqa: ANN001
    from domain.model_registry import service as registry

    rows = registry.list_versions(db, args.kind)
    if not rows:
        _say("no model versions registered")
        return 0
    _say(f"{'version':<40} {'status':<9} {'labels':<10} {'data window':<23} {'val AUC':>7}  created")
    for r in rows:
        auc = f"{r.criterion:.4f}" if r.criterion is not None else "-"
        _say(f"{r.version:<40} {r.status:<9} {r.label_source:<10} {f'{r.data_start}..{r.data_end}':<23} {auc:>7}  "
             f"{r.created_at:%Y-%m-%d %H:%M}")
    return 0


def list_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    return _run(args, _list, settings)


def ensure_initial_model(settings: Settings, *, grid_points: int | None = 1) -> None:
    """The demo's first churn model: trained, promoted and scored right after the backfill when none is live,
    so the pages show model scores from the start (the daily schedule retrains with the full grid later).
    ``grid_points`` keeps start-up short: the first N hyper-parameter settings only."""
    from core.db import get_engine, session_scope
    from domain.model_registry import service as registry
    from ml.lifecycle import NotEnoughData, decide_promotion, train_candidate

    quick = settings.model_copy(update={"model_grid_points": grid_points})
    with session_scope(get_engine(settings.database_url)) as db:
        live = registry.live_version(db, CHURN)
        if live is not None:
            _say(f"churn model {live.version} is live")
            return
        _say("training the first churn model (progress below) ...")
        try:
            row, _run, segs = train_candidate(db, settings=quick, truth=churn_labels(db),
                                              days=settings.model_training_days, progress=lambda line: _say(f"  {line}"))
        except NotEnoughData as exc:
            _say(f"no churn model yet: {exc}; the daily retraining will try again")
            return
        promotion = decide_promotion(db, row, segs, settings=quick)
        _print_decision(promotion.decision)
        db.commit()
        if promotion.promoted:
            _score_today(db, settings, row.version)
