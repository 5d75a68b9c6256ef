"""Issue 6's churn-model acceptance figures on a 90-day backfill: the XGBoost hazard model against the
logistic-regression baseline on the temporal test split, per horizon, plus training and scoring times.

The worlds. Each seed (``--seeds``, default 1,2,3) is simulated for ``--days`` (90) history days followed by
``--follow`` (90) outcome days on a fresh SQLite file (or reused with ``--db URL``, repeatable). Only the
history is the "90-day backfill": feature rows are its days (the first 30 take no part, ml/dataset.py
MIN_HISTORY_DAYS), features see nothing after their own day (ml/features.py), and the training and validation
segments are cut at their own ends. The outcome days exist only so the test split's 30- and 90-day label
windows can close: in production those labels arrive by waiting; here the simulation's ground truth
(synth.truth.churn_truth, handed to ml/, which never reads it) supplies them.

Ceilings. Beside each figure two predictors that know what no model can (bench/churn_oracle.py): today's
latent state, and the whole future hazard path. A figure the future-hazard oracle misses is out of reach on
this world; one the today's-state oracle misses is out of reach for anything that reads today's data.

Prints `name: value unit` lines per world, the mean over the worlds, and PASS/FAIL per acceptance figure on
the mean. Exit 0 when everything passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_speed import (  # noqa: E402
    SESSIONS_PER_DAY, every_tenth_day, figure, fresh_database, machine_reference_s, peak_rss_mb)
from bench.churn_oracle import latent_states, oracle_probabilities, state_oracle  # noqa: E402
from core.db import get_engine, session_scope  # noqa: E402
from ml import metrics  # noqa: E402
from ml.dataset import MIN_HISTORY_DAYS, segments  # noqa: E402
from ml.explain import explain  # noqa: E402
from ml.features import build_features, default_rules  # noqa: E402
from ml.labels import HORIZONS, churn_times, observed_from  # noqa: E402
from ml.score import churn_scores  # noqa: E402
from ml.pipeline import fit  # noqa: E402
from ml.train import timed  # noqa: E402
from synth.truth import churn_truth  # noqa: E402 - a bench may read truth; ml/ never does

TRAIN_BUDGET_S = 30.0
SCORE_BUDGET_S = 1.0
SCORE_RUNS = 3
WORLD_END = datetime(2026, 11, 1, tzinfo=UTC)
failures: list[str] = []


def verdict(ok: bool, what: str) -> None:
    if not ok:
        failures.append(what)
    print(f"{'PASS' if ok else 'FAIL'}: {what}", flush=True)


def _ge(value: float, bound: float) -> bool:
    return not math.isnan(value) and value >= bound


def _le(value: float, bound: float) -> bool:
    return not math.isnan(value) and value <= bound


def world(seed: int, args: argparse.Namespace):  # noqa: ANN201 - (context manager, url)
    from synth.backfill import backfill

    ctx = fresh_database("sqlite")
    url = ctx.__enter__()
    started = time.perf_counter()
    total = args.days + args.follow

    backfill(get_engine(url), days=total, seed=seed, n_tutors=args.tutors, sessions_per_day=SESSIONS_PER_DAY,
             end=args.end, progress=every_tenth_day)
    print(f"# seed {seed}: {total}-day simulation ({args.days} history + {args.follow} outcome days) took "
          f"{time.perf_counter() - started:.0f}s", flush=True)
    return ctx, url


def oracle(segs, engine) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Two ceilings (bench/churn_oracle.py) on exactly the test rows and labels the model is scored on: one that
    knows the whole future hazard path, one that knows only today's latent state."""
    with session_scope(engine) as db:
        p = oracle_probabilities(db, segs.frame.tutor_ids, segs.frame.days, HORIZONS)
        state, e = latent_states(db, segs.frame.tutor_ids, segs.frame.days)
    out = {}
    for j, h in enumerate(HORIZONS):
        rows, y = segs.horizon_examples(2, h)
        if len(rows):
            out[f"oracle_{h}d"] = metrics.report(y, p[rows, j])
            out[f"state_{h}d"] = metrics.report(y, state_oracle(state[rows], e[rows], y))
    return out


def mean_over_worlds(per_world: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each figure averaged over the worlds (each world ranks and calibrates its own tutors; pooling rows of
    different worlds would grade one world's scores against another's). A 13-day test split holds a handful of
    1-day churns per world, so single-world figures at short horizons are mostly noise."""
    keys = set().union(*per_world)
    return {k: {f: float(np.nanmean([w[k][f] for w in per_world if k in w])) for f in per_world[0][k]}
            for k in sorted(keys)}


def show(figures: dict[str, dict[str, float]], prefix: str) -> None:
    for h in HORIZONS:
        rx, rl, rs, ro = (figures.get(f"{k}_{h}d") for k in ("xgb", "lr", "state", "oracle"))
        if rx is None:
            continue
        figure(f"{prefix}_{h}d_examples", rx["n"], "rows")
        figure(f"{prefix}_{h}d_positives", rx["positives"], "rows")
        for key in ("base_rate", "auc", "precision_at_10", "lift_at_10", "brier", "brier_skill", "ece"):
            print(f"{prefix}_{h}d_{key}: xgb {rx[key]:.3f} lr {rl[key]:.3f} | ceilings: today's state {rs[key]:.3f}, "
                  f"future hazards {ro[key]:.3f}", flush=True)


def acceptance(figures: dict[str, dict[str, float]], per_world: list[dict[str, dict[str, float]]]) -> None:
    """PASS/FAIL on the mean over the worlds; each line also lists the worlds' own values, as their spread is
    what tells a miss from noise."""
    def spread(key: str, field: str, minus: str | None = None) -> str:
        values = [w[key][field] - (w[minus][field] if minus else 0.0) for w in per_world if key in w]
        return "" if len(values) < 2 else " (worlds: " + ", ".join(f"{v:.3f}" for v in values) + ")"

    for h in HORIZONS:
        rx, rl = figures.get(f"xgb_{h}d"), figures.get(f"lr_{h}d")
        if rx is None:
            verdict(False, f"{h}d: no test example has a closed label window")
            continue
        x = f"xgb_{h}d"
        if h == 30:
            verdict(_ge(rx["auc"], 0.85), f"30d AUC {rx['auc']:.3f} >= 0.85{spread(x, 'auc')}")
        if h in (30, 90):
            verdict(_ge(rx["precision_at_10"], 0.70),
                    f"{h}d precision@10% {rx['precision_at_10']:.3f} >= 0.70{spread(x, 'precision_at_10')}")
        if h in (1, 7):
            verdict(_ge(rx["lift_at_10"], 3.0), f"{h}d lift@10% {rx['lift_at_10']:.2f} >= 3{spread(x, 'lift_at_10')}")
        verdict(_le(rx["brier"], 0.15), f"{h}d Brier {rx['brier']:.4f} <= 0.15{spread(x, 'brier')}")
        verdict(_ge(rx["brier_skill"], 0.2),
                f"{h}d Brier skill {rx['brier_skill']:.3f} >= 0.2{spread(x, 'brier_skill')}")
        verdict(_le(rx["ece"], 0.05), f"{h}d ECE {rx['ece']:.4f} <= 0.05{spread(x, 'ece')}")
        verdict(_ge(rx["auc"] - rl["auc"], 0.02),
                f"{h}d XGBoost AUC beats LR by {rx['auc'] - rl['auc']:+.3f} >= 0.02{spread(x, 'auc', f'lr_{h}d')}")


def run(url: str, args: argparse.Namespace, tag: str) -> dict[str, dict[str, float]]:
    """Train and score one world; returns the test reports per "<predictor>_<h>d"."""
    engine = get_engine(url)
    with session_scope(engine) as db:
        start_day = observed_from(db)
        end_day = start_day + timedelta(days=args.days - 1)  # the history's last day
        frame, t_feat = timed(build_features, db, start=start_day, end=end_day)
        times = churn_times(db, frame, truth=churn_truth(db))
    figure(f"{tag}_features_90d_rows", float(len(frame)), "rows")
    figure(f"{tag}_features_90d_seconds", t_feat, "s")
    segs = segments(frame, times, data_start=start_day)
    print(f"# {tag}: rows from {start_day + timedelta(days=MIN_HISTORY_DAYS)}; validation from "
          f"{segs.split.val_start}, test from {segs.split.test_start}; outcomes observed to "
          f"{segs.split.observed_end}", flush=True)

    result, t_fit = timed(fit, segs, progress=lambda line: print(f"#   {line}", flush=True))
    figure(f"{tag}_train_rows_tutor_days", float(result.counts["train"]["rows"]), "rows")
    figure(f"{tag}_train_seconds_fit", t_fit, "s")
    for name, secs in result.seconds.items():
        figure(f"{tag}_train_seconds_{name}", secs, "s")
    print(f"#   chosen {result.model.params}, calibration {result.model.calibration}")
    verdict(t_feat + t_fit < TRAIN_BUDGET_S, f"{tag} training on {len(frame)} tutor-days: features {t_feat:.1f}s + "
            f"fit {t_fit:.1f}s < {TRAIN_BUDGET_S:.0f}s")

    p_all = result.model.predict(frame.X)
    violations = int((np.diff(p_all, axis=1) < 0).sum())
    verdict(violations == 0, f"{tag} P(1d) <= P(7d) <= P(30d) <= P(90d) on all {len(frame)} rows ({violations} violations)")

    # Scoring as the daily run does it: every tutor's features as of the next day, probabilities, score, top-3.
    # The first call is what a once-a-day run meets (its pages may have left the OS cache); the budget is judged
    # on the best of SCORE_RUNS after it, as bench/feature_speed.py judges the features alone.
    rules = default_rules()
    seconds = []
    for _ in range(1 + SCORE_RUNS):
        with session_scope(engine) as db:
            last, t_last_feat = timed(build_features, db, start=end_day + timedelta(days=1),
                                      end=end_day + timedelta(days=1))
        (_, _), t_predict = timed(lambda: (churn_scores(result.model.predict(last.X), rules),
                                            explain(result.model, last.X, horizon=rules.model.explain_horizon)))
        seconds.append((t_last_feat, t_predict))
    figure(f"{tag}_score_tutors", float(len(last)), "tutors")
    figure(f"{tag}_score_first_seconds_features", seconds[0][0], "s")
    figure(f"{tag}_score_first_seconds_model_and_explain", seconds[0][1], "s")
    best = min(seconds[1:], key=sum)
    figure(f"{tag}_score_best_seconds_features", best[0], "s")
    figure(f"{tag}_score_best_seconds_model_and_explain", best[1], "s")
    verdict(sum(best) < SCORE_BUDGET_S, f"{tag} scoring {len(last)} tutors, best of {SCORE_RUNS} after the first "
            f"({sum(seconds[0]):.2f}s): {sum(best):.2f}s < {SCORE_BUDGET_S:.0f}s")

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with session_scope(engine) as db:
        p_oracle = oracle_probabilities(db, frame.tutor_ids, frame.days, HORIZONS)
        state, e = latent_states(db, frame.tutor_ids, frame.days)
    p_lr = result.baseline.predict(frame.X)
    for j, h in enumerate(HORIZONS):
        rows, y = segs.horizon_examples(2, h)
        if len(rows):
            out.update({f"xgb_{h}d": (y, p_all[rows, j]), f"lr_{h}d": (y, p_lr[rows, j]),
                        f"oracle_{h}d": (y, p_oracle[rows, j]),
                        f"state_{h}d": (y, state_oracle(state[rows], e[rows], y))})
    reports = {k: metrics.report(*v) for k, v in out.items()}
    show(reports, f"{tag}_test")
    figure(f"{tag}_peak_rss_mb", peak_rss_mb(), "MB")
    return reports


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", action="append", default=[], help="reuse an existing simulated database (read only); repeatable")
    ap.add_argument("--seeds", default="1,2,3", help="fresh worlds to simulate when no --db is given")
    ap.add_argument("--days", type=int, default=90, help="history days: the backfill the model sees")
    ap.add_argument("--follow", type=int, default=90, help="outcome days simulated after the history")
    ap.add_argument("--tutors", type=int, default=300)
    # The simulation ends at this instant, so a seed names one world: ending it at "now" shifts every record by
    # the minutes between two runs, and that alone moved one world's 30-day AUC from 0.879 to 0.830.
    ap.add_argument("--end", type=datetime.fromisoformat, default=WORLD_END,
                    help=f"when fresh worlds end (ISO 8601, default {WORLD_END.isoformat()})")
    args = ap.parse_args()
    per_world = []
    figure("machine_reference_loop", machine_reference_s(), "s")
    for i, source in enumerate(args.db or [int(s) for s in args.seeds.split(",")]):
        ctx, url = (None, source) if isinstance(source, str) else world(source, args)
        try:
            per_world.append(run(url, args, f"world{i + 1}"))
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
    figures = mean_over_worlds(per_world)
    print(f"# mean over {len(per_world)} world(s): the acceptance verdicts below")
    show(figures, "mean_test")
    acceptance(figures, per_world)
    print(f"# {len(failures)} figure(s) failed" if failures else "# all figures pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
