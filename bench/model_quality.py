"""Issue 6's churn-model acceptance figures: XGBoost (stacked over horizons, monotone, calibrated) against a
logistic-regression baseline on the temporal test split, per horizon, with train and scoring times.

A synthetic world is backfilled (default 300 days: 30 warm-up + 180 feature days + 90 for the last labels; 300 tutors, default scenario, ``--seed``) or reused with
``--db URL``. Feature days run from ``--warmup`` days after the world starts (so the 30-day windows are full)
to ``--reserve`` days before its end (so the test split's 90-day label windows are observed); labels come from the simulation's ground truth (synth.truth.churn_truth, passed into
ml.labels; the model never sees it as a feature). Split and label-window rules: ml/dataset.py. A horizon
with no test example whose window closes inside the world is reported n/a and fails its figures.

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
from ml import metrics  # noqa: E402
from ml.dataset import build_stacked, temporal_split  # noqa: E402
from ml.features import build_features  # noqa: E402
from ml.labels import HORIZONS, labels  # noqa: E402
from ml.train import fit_baseline, fit_model, predict_horizons, timed  # noqa: E402
from synth.models import SynthWorld  # noqa: E402
from synth.truth import churn_truth  # noqa: E402 - a bench may read truth; ml/ never does

TRAIN_BUDGET_S = 30.0
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
    backfill(get_engine(url), days=args.days, seed=args.seed, n_tutors=args.tutors, sessions_per_day=SESSIONS_PER_DAY,
             progress=lambda line: print(f"#   {line}", flush=True) if line.startswith("day ") and line.split()[1].split("/")[0].endswith("0") else None)
    print(f"# {args.days}-day backfill took {time.perf_counter() - started:.0f}s", flush=True)
    return ctx, url


def evaluate(url: str, args: argparse.Namespace) -> None:
    engine = get_engine(url)
    with session_scope(engine) as db:
        truth = churn_truth(db)
        last_day = (truth.observed_until - timedelta(seconds=1)).date()
        # Feature days stop `reserve` days before the data ends, so test examples of every horizon up to the
        # reserve have their whole label window observed (otherwise the last 15% holds no 30/90-day labels).
        end_day = last_day - timedelta(days=args.reserve)
        epoch = db.execute(select(SynthWorld.epoch).order_by(SynthWorld.world_id.desc())).scalars().first()
        start_day = epoch.date() + timedelta(days=args.warmup)
        frame, t_feat = timed(build_features, db, start=start_day, end=end_day)
        lab = labels(db, frame, HORIZONS, truth=truth)
    print(f"# feature days {start_day}..{end_day}: {len(frame)} rows in {t_feat:.1f}s", flush=True)
    split = temporal_split(frame.days, truth.observed_until)
    data = build_stacked(frame, lab, split)
    day = frame.days[data.row]
    print(f"# split: val from {split.val_start}, test from {split.test_start}, labels observed to {split.observed_end}")
    for s, name in enumerate(("train", "val", "test")):
        counts = ", ".join(f"{h}d {int(data.part(s, h).sum())}/{int(data.y[data.part(s, h)].sum())}" for h in HORIZONS)
        print(f"# {name} examples/positives: {counts}")

    model, t_train = timed(fit_model, data, day)
    baseline, t_base = timed(fit_baseline, data)
    figure("train_rows_tutor_days", float(len(np.unique(data.row[data.part(0)]))), "rows")
    figure("train_seconds_xgb_incl_search_and_calibration", t_train, "s")
    figure("train_seconds_lr_baseline", t_base, "s")
    print(f"# chosen: {model.params}, calibration {model.calibration}")
    for point in model.search:
        print(f"#   grid {point}")
    verdict(t_train < TRAIN_BUDGET_S, f"training {t_train:.1f}s < {TRAIN_BUDGET_S:.0f}s")

    # Every feature row of the world, every horizon: monotone without exception.
    p_all = predict_horizons(model, frame.X)
    violations = int((np.diff(p_all, axis=1) < 0).sum())
    figure("monotonicity_violations", float(violations), "pairs")
    verdict(violations == 0, f"P(1d) <= P(7d) <= P(30d) <= P(90d) on all {len(frame)} rows")

    # Scoring: everything a daily run needs for the last day, features included.
    with session_scope(engine) as db:
        (last, _), t_last_feat = timed(lambda: (build_features(db, start=last_day, end=last_day), None))
    _, t_score = timed(predict_horizons, model, last.X)
    figure("score_last_day_tutors", float(len(last)), "tutors")
    figure("score_last_day_seconds_features", t_last_feat, "s")
    figure("score_last_day_seconds_predict", t_score, "s")

    te = data.part(2)
    p_x = model.proba(data.X[te])
    p_lr = baseline.predict_proba(data.X[te])[:, 1]
    for h in HORIZONS:
        m = data.horizon[te] == h
        y = data.y[te][m]
        rx, rl = metrics.report(y, p_x[m]), metrics.report(y, p_lr[m])
        figure(f"test_{h}d_examples", rx["n"], "rows")
        figure(f"test_{h}d_positives", rx["positives"], "rows")
        for key in ("auc", "precision_at_10", "lift_at_10", "brier", "brier_skill", "ece"):
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
    figure("peak_rss_mb", peak_rss_mb(), "MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="reuse an existing backfilled database (read only)")
    ap.add_argument("--days", type=int, default=300, help="backfill span in days (a fresh world)")
    ap.add_argument("--tutors", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=30, help="days at the start of the world without feature rows")
    ap.add_argument("--reserve", type=int, default=90, help="days at the end of the world without feature rows")
    args = ap.parse_args()
    ctx, url = world(args)
    try:
        evaluate(url, args)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    print(f"# {len(failures)} figure(s) failed" if failures else "# all figures pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
