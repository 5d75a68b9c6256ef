"""Issue 6's churn-model acceptance figures on a 90-day backfill: the XGBoost hazard model against the
logistic-regression baseline on the temporal test split, per horizon, plus training and scoring times.

The world. A synthetic world is simulated for ``--days`` (90) history days followed by ``--follow`` (90)
outcome days, on a fresh SQLite file (or reused with ``--db URL``). Only the history is the "90-day backfill":
feature rows are its days, features see nothing after their own day (ml/features.py), and the training and
validation segments are cut at their own ends (ml/dataset.py). The outcome days exist only so the test split's
30- and 90-day label windows can close: in production those labels arrive by waiting; here the simulation's
ground truth (synth.truth.churn_truth, handed to ml/, which never reads it) supplies them.

Prints `name: value unit` lines and PASS/FAIL per acceptance figure. Exit 0 when everything passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_speed import SESSIONS_PER_DAY, figure, fresh_database, peak_rss_mb  # noqa: E402
from core.db import get_engine, session_scope  # noqa: E402
from ml.dataset import segments  # noqa: E402
from ml.features import build_features  # noqa: E402
from ml.labels import HORIZONS, churn_times  # noqa: E402
from ml.pipeline import evaluate, fit  # noqa: E402
from ml.train import timed  # noqa: E402
from synth.models import SynthWorld  # noqa: E402
from synth.truth import churn_truth  # noqa: E402 - a bench may read truth; ml/ never does

TRAIN_BUDGET_S = 30.0
SCORE_BUDGET_S = 1.0
failures: list[str] = []


def verdict(ok: bool, what: str) -> None:
    if not ok:
        failures.append(what)
    print(f"{'PASS' if ok else 'FAIL'}: {what}", flush=True)


def _ge(value: float, bound: float) -> bool:
    return not math.isnan(value) and value >= bound


def _le(value: float, bound: float) -> bool:
    return not math.isnan(value) and value <= bound


def world(args: argparse.Namespace):  # noqa: ANN201 - (context manager or None, url)
    if args.db:
        return None, args.db
    from synth.backfill import backfill

    ctx = fresh_database("sqlite")
    url = ctx.__enter__()
    started = time.perf_counter()
    total = args.days + args.follow
    backfill(get_engine(url), days=total, seed=args.seed, n_tutors=args.tutors, sessions_per_day=SESSIONS_PER_DAY,
             progress=lambda line: print(f"#   {line}", flush=True) if line.startswith("day ") and line.split()[1].split("/")[0].endswith("0") else None)
    print(f"# {total}-day simulation ({args.days} history + {args.follow} outcome days) took "
          f"{time.perf_counter() - started:.0f}s", flush=True)
    return ctx, url


def acceptance(figures: dict[str, dict[str, float]]) -> None:
    for h in HORIZONS:
        rx, rl = figures.get(f"xgb_{h}d"), figures.get(f"lr_{h}d")
        if rx is None:
            verdict(False, f"{h}d: no test example has a closed label window")
            continue
        figure(f"test_{h}d_examples", rx["n"], "rows")
        figure(f"test_{h}d_positives", rx["positives"], "rows")
        for key in ("base_rate", "auc", "precision_at_10", "lift_at_10", "brier", "brier_skill", "ece"):
            print(f"test_{h}d_{key}: xgb {rx[key]:.3f} lr {rl[key]:.3f}", flush=True)
        if h == 30:
            verdict(_ge(rx["auc"], 0.85), f"30d AUC {rx['auc']:.3f} >= 0.85")
        if h in (30, 90):
            verdict(_ge(rx["precision_at_10"], 0.70), f"{h}d precision@10% {rx['precision_at_10']:.3f} >= 0.70")
        if h in (1, 7):
            verdict(_ge(rx["lift_at_10"], 3.0), f"{h}d lift@10% {rx['lift_at_10']:.2f} >= 3")
        verdict(_le(rx["brier"], 0.15), f"{h}d Brier {rx['brier']:.4f} <= 0.15")
        verdict(_ge(rx["brier_skill"], 0.2), f"{h}d Brier skill {rx['brier_skill']:.3f} >= 0.2")
        verdict(_le(rx["ece"], 0.05), f"{h}d ECE {rx['ece']:.4f} <= 0.05")
        verdict(_ge(rx["auc"] - rl["auc"], 0.02), f"{h}d XGBoost AUC beats LR by {rx['auc'] - rl['auc']:+.3f} >= 0.02")


def run(url: str, args: argparse.Namespace) -> None:
    engine = get_engine(url)
    with session_scope(engine) as db:
        epoch = db.execute(select(SynthWorld.epoch).order_by(SynthWorld.world_id.desc())).scalars().first()
        start_day = epoch.date() + timedelta(days=args.warmup)
        end_day = epoch.date() + timedelta(days=args.days - 1)  # the history's last day
        frame, t_feat = timed(build_features, db, start=start_day, end=end_day)
        times = churn_times(db, frame, truth=churn_truth(db))
    print(f"# feature days {start_day}..{end_day}: {len(frame)} rows in {t_feat:.1f}s", flush=True)
    segs = segments(frame, times)
    print(f"# split: validation from {segs.split.val_start}, test from {segs.split.test_start}; outcomes "
          f"observed to {segs.split.observed_end}", flush=True)

    result, t_train = timed(fit, segs, progress=lambda line: print(f"#   {line}", flush=True))
    figure("train_rows_tutor_days", float(result.counts["train"]["rows"]), "rows")
    figure("train_pieces", float(result.counts["train"]["pieces"]), "pieces")
    figure("train_seconds_total", t_train, "s")
    for name, secs in result.seconds.items():
        figure(f"train_seconds_{name}", secs, "s")
    for point in result.model.search:
        print(f"#   grid {point}")
    verdict(t_train < TRAIN_BUDGET_S, f"training {t_train:.1f}s < {TRAIN_BUDGET_S:.0f}s")

    p_all = result.model.predict(frame.X)
    violations = int((np.diff(p_all, axis=1) < 0).sum())
    figure("monotonicity_violations", float(violations), "pairs")
    verdict(violations == 0, f"P(1d) <= P(7d) <= P(30d) <= P(90d) on all {len(frame)} rows")

    # Scoring as the daily run does it: every tutor's features as of the last day, then the model.
    with session_scope(engine) as db:
        last, t_last_feat = timed(build_features, db, start=end_day, end=end_day)
    _, t_predict = timed(result.model.predict, last.X)
    figure("score_tutors", float(len(last)), "tutors")
    figure("score_seconds_features", t_last_feat, "s")
    figure("score_seconds_predict", t_predict, "s")
    verdict(t_last_feat + t_predict < SCORE_BUDGET_S,
            f"scoring {len(last)} tutors {t_last_feat + t_predict:.2f}s < {SCORE_BUDGET_S:.0f}s")

    acceptance(evaluate(result, segs, 2))
    figure("peak_rss_mb", peak_rss_mb(), "MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="reuse an existing simulated database (read only)")
    ap.add_argument("--days", type=int, default=90, help="history days: the backfill the model sees")
    ap.add_argument("--follow", type=int, default=90, help="outcome days simulated after the history")
    ap.add_argument("--tutors", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=0, help="history days at the start without feature rows")
    args = ap.parse_args()
    ctx, url = world(args)
    try:
        run(url, args)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    print(f"# {len(failures)} figure(s) failed" if failures else "# all figures pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
