"""PNG figures of the churn model card (ml/card.py), drawn from plain arrays.

Figures are built as ``matplotlib.figure.Figure`` objects on an Agg canvas, never through pyplot: the card is
written inside a worker's thread pool, and pyplot's global figure manager is neither thread-safe nor needed
without a display.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from sklearn.metrics import roc_curve

from ml.metrics import auc  # the legend's AUC is the table's

XGB, LR, GREY = "#1f5fbf", "#e08a4b", "#8a8a8a"
LEVEL_COLOURS = {"Low": "#d9f0d3", "Medium": "#fff2b3", "High": "#fdd0a2", "Critical": "#f4a6a6"}
CAL_BINS = 10  # the same equal-width bins as the ECE in ml/metrics.py, so the diagram shows what ECE sums

# horizon -> (y, p_xgb, p_lr, tutor ids) on the evaluated rows, or None when no label window closed
Curves = Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _two_classes(y: np.ndarray) -> bool:
    return 0 < float(np.sum(y)) < len(y)


def auc_interval(y: np.ndarray, p: np.ndarray, tutors: np.ndarray, reps: int = 200) -> tuple[float, float]:
    """95% interval of AUC-ROC resampling tutors (not rows: one tutor's days are near-duplicates). A resample
    only reweights rows, so the ranking is sorted once and each weighted AUC is a few bincounts (ties count
    half, as in roc_auc_score)."""
    y = np.asarray(y, dtype=np.float64)
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    _, code = np.unique(tutors, return_inverse=True)
    _, group = np.unique(p, return_inverse=True)  # tie groups in ascending score order
    rng, k, out = np.random.default_rng(0), code.max() + 1, []
    for _ in range(reps):
        w = np.bincount(rng.integers(0, k, size=k), minlength=k)[code].astype(np.float64)
        pos, neg = np.bincount(group, w * y), np.bincount(group, w * (1 - y))
        if pos.sum() > 0 and neg.sum() > 0:
            below = np.cumsum(neg) - neg
            out.append(float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum())))
    return (float(np.percentile(out, 2.5)), float(np.percentile(out, 97.5))) if out else (float("nan"),) * 2


def roc_curves(curves: Curves, path: Path) -> Path:
    """One ROC panel per horizon, the model (with its tutor-resampled AUC interval) against the baseline."""
    fig = _figure(4 * len(curves), 4.9)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (h, c) in zip(axes, curves.items(), strict=True):
        ax.set_title(f"{h}-day horizon")
        if c is None or not _two_classes(c[0]):
            _empty(ax, "no closed label window" if c is None else "one class only:\nno ROC curve")
            continue
        y = c[0]
        lo, hi = auc_interval(y, c[1], c[3])
        for p, name, colour, extra in ((c[1], "XGBoost", XGB, f" [{lo:.2f}, {hi:.2f}]"), (c[2], "LR baseline", LR, "")):
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, color=colour, lw=1.6, label=f"{name} AUC {auc(y, p):.3f}{extra}")
        ax.plot([0, 1], [0, 1], color=GREY, lw=0.8, ls="--", label="chance")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right", fontsize=8)
        ax.text(0.02, 0.97, f"n={len(y):,}  churned={int(np.sum(y)):,}", transform=ax.transAxes, va="top", fontsize=8)
    fig.suptitle("ROC curves on the test segment (XGBoost: 95% AUC interval resampling tutors)")
    return _save(fig, path)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = CAL_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted, observed rate, count) per non-empty equal-width probability bin."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    n = np.bincount(b, minlength=bins)
    keep = n > 0
    mean_p = np.bincount(b, weights=p, minlength=bins)[keep] / n[keep]
    rate = np.bincount(b, weights=y, minlength=bins)[keep] / n[keep]
    return mean_p, rate, n[keep]


def calibration_curves(curves: Curves, path: Path) -> Path:
    """Reliability diagram per horizon (the model's probabilities, 10 equal-width bins) over a panel with the
    number of rows in each bin: a point resting on a handful of rows says little."""
    fig = _figure(4 * len(curves), 5.6)
    grid = fig.add_gridspec(2, len(curves), height_ratios=(3, 1))
    for i, (h, c) in enumerate(curves.items()):
        ax, ax_n = fig.add_subplot(grid[0, i]), fig.add_subplot(grid[1, i])
        ax.set_title(f"{h}-day horizon")
        if c is None or not len(c[0]):
            _empty(ax, "no closed label window")
            ax_n.set_axis_off()
            continue
        mean_p, rate, n = reliability(c[0], c[1])
        top = max(0.05, float(max(mean_p.max(), rate.max())) * 1.1)
        ax.plot([0, 1], [0, 1], color=GREY, lw=0.8, ls="--", label="perfect")
        ax.plot(mean_p, rate, "o-", color=XGB, lw=1.4, ms=5, label="XGBoost")
        for x, r, k in zip(mean_p, rate, n, strict=True):
            ax.annotate(f"{k:,}", (x, r), textcoords="offset points", xytext=(4, 4), fontsize=7, color="#333")
        ax.set_xlim(0, min(1.0, top))
        ax.set_ylim(0, min(1.0, top))
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed churn rate")
        ax.legend(loc="upper left", fontsize=8)
        ax_n.bar(mean_p, n, width=min(1.0, top) * 0.03, color=XGB, alpha=0.7)  # under the points above
        ax_n.set_yscale("log")
        ax_n.set_ylim(bottom=0.8)  # a bin of one row still shows as a bar
        ax_n.yaxis.set_minor_formatter(NullFormatter())  # 2x10^3, 3x10^3 ... crowd a short panel
        ax_n.set_xlim(0, min(1.0, top))
        ax_n.set_xlabel("mean predicted probability of the bin")
        ax_n.set_ylabel("rows")
    fig.suptitle("Calibration on the test segment (point labels: rows in the bin; axes zoomed to the data)")
    return _save(fig, path)


def feature_importance(shap: Sequence[tuple[str, float]], gain: Sequence[tuple[str, float]], path: Path,
                       top: int = 20) -> Path:
    """Two rankings side by side: mean |SHAP| on test rows (what moves individual predictions) and XGBoost's
    average gain per split (what the trees leaned on while training)."""
    fig = _figure(13, 0.3 * min(top, max(len(shap), len(gain), 1)) + 1.4)
    left, right = fig.subplots(1, 2)
    for ax, pairs, colour, title in ((left, shap, XGB, "mean |SHAP| on test rows (log daily hazard)"),
                                     (right, gain, LR, "XGBoost average gain per split")):
        pairs = sorted(pairs, key=lambda kv: -kv[1])[:top][::-1]
        if not pairs:
            _empty(ax, "nothing to rank")
            continue
        ax.barh([k for k, _ in pairs], [v for _, v in pairs], color=colour)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"Feature importance (top {top} of each ranking)")
    return _save(fig, path)


def score_distribution(scores: np.ndarray, bounds: Mapping[str, float], path: Path,
                       churned: np.ndarray | None = None, churn_label: str = "") -> Path:
    """Histogram of churn scores 0-100 with the risk-level bands behind it; the rows whose tutor churned,
    when known, are drawn on top so the separation shows."""
    fig = _figure(9, 3.8)
    ax = fig.subplots()
    lo = 0.0
    for level, hi in bounds.items():
        ax.axvspan(lo, hi, color=LEVEL_COLOURS.get(level, "#eeeeee"), alpha=0.6, lw=0)
        ax.text((lo + hi) / 2, 1.0, level, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
        lo = hi
    edges = np.linspace(0, 100, 51)
    ax.hist(scores, bins=edges, color=GREY, label=f"all rows ({len(scores):,})")
    if churned is not None and churned.any():
        ax.hist(scores[churned], bins=edges, color="#c0392b", label=f"{churn_label} ({int(churned.sum()):,})")
    ax.set_yscale("log")
    ax.set_xlim(0, 100)
    ax.set_xlabel("model churn score (0-100)")
    ax.set_ylabel("tutor-days (log)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Churn score distribution on the test segment", pad=16)
    return _save(fig, path)


def lead_time_histogram(leads: np.ndarray, window_days: int, path: Path, churns: int = 0) -> Path:
    fig = _figure(8, 3.6)
    ax = fig.subplots()
    if len(leads):
        ax.hist(leads, bins=np.arange(0, window_days + 6, 5) - 0.5, color=XGB)
        med = float(np.median(leads))
        ax.axvline(med, color="k", ls="--", lw=1, label=f"median {med:.0f} days")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_xlim(-1, window_days + 1)
        ax.set_xlabel("days from the first High/Critical level to the churn")
        ax.set_ylabel("churns")
    else:
        _empty(ax, "no churn was flagged High/Critical ahead" if churns else "no churn observed in the data window")
    ax.set_title(f"Lead time of the first High/Critical warning ({len(leads)} of {churns} churns flagged)")
    return _save(fig, path)
