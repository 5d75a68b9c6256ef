"""Quality figures for churn probabilities, per horizon: ranking (AUC, precision and lift in the top 10%) and
calibration (Brier, Brier skill score, expected calibration error)."""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """AUC-ROC; NaN when only one class is present (undefined, not 0.5)."""
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else math.nan


def precision_at(y: np.ndarray, p: np.ndarray, frac: float = 0.10) -> float:
    """Share of churners among the ceil(frac * n) highest scores (the PRD's "top 10% high-risk group").
    Ties at the cut are broken by a stable sort, so the figure is deterministic."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return math.nan
    k = max(1, math.ceil(frac * len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean())


def lift_at(y: np.ndarray, p: np.ndarray, frac: float = 0.10) -> float:
    """precision_at over the base rate: how many times richer in churners the top group is than a random one."""
    base = float(np.mean(y)) if len(y) else math.nan
    return precision_at(y, p, frac) / base if base > 0 else math.nan


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def brier_skill(y: np.ndarray, p: np.ndarray, base_rate: float | None = None) -> float:
    """1 - Brier / Brier of the constant base-rate predictor. The default reference uses the evaluated set's
    own base rate, the best any constant can do there (b(1-b)), so the score is the conservative one."""
    b = float(np.mean(y)) if base_rate is None else base_rate
    ref = brier(y, np.full(len(y), b))
    return 1.0 - brier(y, p) / ref if ref > 0 else math.nan


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins: sum over bins of the bin's share
    of examples times |mean predicted - observed rate|. p = 1.0 falls in the last bin."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return math.nan
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def report(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every figure for one horizon's examples."""
    return {"n": float(len(y)), "positives": float(np.sum(y)), "base_rate": float(np.mean(y)) if len(y) else math.nan,
            "auc": auc(y, p), "precision_at_10": precision_at(y, p), "lift_at_10": lift_at(y, p),
            "brier": brier(y, p) if len(y) else math.nan, "brier_skill": brier_skill(y, p) if len(y) else math.nan,
            "ece": ece(y, p)}
