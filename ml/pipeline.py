"""One training run end to end, the same for the bench, the CLI and the daily retraining workflow: features ->
churn times -> temporal segments -> tuned hazard model -> calibration -> per-horizon figures on validation and
test, for the XGBoost model and the logistic-regression baseline."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ml import metrics
from ml.baseline import BaselineModel, fit_baseline
from ml.dataset import Segments
from ml.labels import HORIZONS
from ml.train import GRID, ChurnModel, choose_calibration, timed, tune

Progress = Callable[[str], None]


@dataclass
class Run:
    model: ChurnModel
    baseline: BaselineModel
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # segment -> what it held
    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # segment -> "xgb_30d" -> report


def calibration_set(model: ChurnModel, segs: Segments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log cumulative hazard, y, feature day) over every closed validation label of every horizon."""
    zs, ys, ds = [], [], []
    for j, h in enumerate(model.horizons):
        rows, y = segs.horizon_examples(1, h)
        if len(rows):
            zs.append(model.log_cumulative(segs.frame.X[rows])[:, j])
            ys.append(y)
            ds.append(segs.frame.days[rows])
    if not zs:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype="datetime64[D]")
    return np.concatenate(zs), np.concatenate(ys), np.concatenate(ds)


def calibration_reach(model: ChurnModel, segs: Segments) -> float:
    """The score calibration must carry: the 99th percentile of the longest horizon's log cumulative hazard
    over the validation rows (the top 1% are left to the calibrator's end values, as any fitted range would)."""
    rows = np.flatnonzero(segs.segment == 1)
    return float(np.percentile(model.log_cumulative(segs.frame.X[rows])[:, -1], 99)) if len(rows) else float("nan")


def fit(segs: Segments, grid: tuple[dict, ...] = GRID, progress: Progress = lambda _: None) -> Run:
    (train, val), t_pieces = timed(lambda: (segs.pieces(0), segs.pieces(1)))
    if not len(train.events) or not len(val.events):
        lag = int(segs.times.lag / np.timedelta64(1, "D"))
        why = (f" (labels by {segs.times.source} are known {lag} days late, so each segment must be longer than that:"
               f" train on more days)") if lag else ""
        raise ValueError(f"need training and validation pieces: the span is too short for a 70/15/15 split{why}")
    if train.events.sum() == 0:
        raise ValueError("no churn observed before the validation cut: nothing to learn from")
    progress(f"pieces: train {len(train.events)} ({int(train.events.sum())} churns), "
             f"validation {len(val.events)} ({int(val.events.sum())} churns)")
    (regressor, params, search), t_tune = timed(tune, train, val, grid)
    progress(f"tuned {len(grid)} settings in {t_tune:.1f}s: {params}")
    model = ChurnModel(regressor=regressor, names=segs.frame.names, horizons=HORIZONS, params=params, search=search)
    z, y, day = calibration_set(model, segs)
    reach = calibration_reach(model, segs)
    (model.calibrated, model.calibration, scores), t_cal = timed(choose_calibration, z, y, day, reach=reach)
    model.calibration_scores = scores
    progress(f"calibration: {model.calibration} (held-out Brier {scores})")
    baseline, t_base = timed(fit_baseline, train, val)
    run = Run(model=model, baseline=baseline,
              seconds={"pieces": t_pieces, "tune": t_tune, "calibrate": t_cal, "baseline": t_base})
    run.counts = {"train": {"rows": int(len(np.unique(train.row))), "pieces": len(train.events),
                            "churns": int(train.events.sum())},
                  "val": {"rows": int(len(np.unique(val.row))), "pieces": len(val.events),
                          "churns": int(val.events.sum()), "calibration_examples": len(y)}}
    return run


def horizon_reports(model: ChurnModel | BaselineModel, segs: Segments, segment: int, prefix: str = "xgb"
                    ) -> dict[str, dict[str, float]]:
    """Per-horizon reports ("<prefix>_<h>d") of one model on one segment's closed windows."""
    out: dict[str, dict[str, float]] = {}
    for j, h in enumerate(HORIZONS):
        rows, y = segs.horizon_examples(segment, h)
        if len(rows):
            out[f"{prefix}_{h}d"] = metrics.report(y, model.predict(segs.frame.X[rows])[:, j])
    return out


def evaluate(run: Run, segs: Segments, segment: int) -> dict[str, dict[str, float]]:
    """Per-horizon reports on one segment's closed windows, for the model ("xgb_<h>d") and baseline ("lr_<h>d")."""
    out = {**horizon_reports(run.model, segs, segment), **horizon_reports(run.baseline, segs, segment, "lr")}
    run.figures[("train", "val", "test")[segment]] = out
    return out


def mean_auc(model: ChurnModel | BaselineModel, segs: Segments, segment: int = 1) -> float:
    """The champion/challenger criterion: mean AUC over the horizons that have closed windows in ``segment``."""
    aucs = []
    for j, h in enumerate(HORIZONS):
        rows, y = segs.horizon_examples(segment, h)
        if len(rows) and 0 < y.sum() < len(y):
            aucs.append(metrics.auc(y, model.predict(segs.frame.X[rows])[:, j]))
    return float(np.mean(aucs)) if aucs else float("nan")
