"""Train the churn model: XGBoost daily hazards per piece of the future (ml/hazard.py), tuned on the validation
segment, then calibrated on validation's closed horizon labels.

Monotone across horizons. The raw model's P(h) grows with h by construction (a cumulative hazard). Calibration
is one function of log cumulative hazard shared by every horizon (a frozen scorer wrapped by scikit-learn's
CalibratedClassifierCV), so it keeps that order exactly when the function is non-decreasing: isotonic with
``increasing=True`` always is; Platt is when its slope has the right sign, which ``calibrator_is_monotone``
checks. ``ChurnModel.predict`` therefore never sorts or clips.

Nothing here reads ground truth: churn times arrive already built (ml/labels.py) from whatever the caller passed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from ml import hazard
from ml.labels import HORIZONS
from ml.metrics import brier

# Small on purpose: the 30 s training budget covers the whole search. Trees per point come from early stopping
# on validation, so n_estimators is only a ceiling.
GRID: tuple[dict, ...] = tuple({"max_depth": d, "learning_rate": lr, "min_child_weight": w}
                               for d, lr, w in ((2, 0.1, 5), (3, 0.1, 5), (4, 0.05, 10), (6, 0.05, 20)))
MAX_TREES = 500
EARLY_STOP = 30
CAL_METHODS = ("isotonic", "sigmoid")


def _regressor(params: dict, **extra: object) -> xgb.XGBRegressor:
    return xgb.XGBRegressor(objective="count:poisson", tree_method="hist", eval_metric="poisson-nloglik",
                            subsample=0.8, colsample_bytree=0.8, reg_lambda=1.0, n_jobs=-1, random_state=0,
                            **params, **extra)


def poisson_nll(events: np.ndarray, exposure: np.ndarray, rate: np.ndarray) -> float:
    """Mean Poisson negative log-likelihood per piece (constant terms dropped), the tuning criterion."""
    mu = np.clip(rate * exposure, 1e-12, None)
    return float(np.mean(mu - events * np.log(mu)))


@dataclass
class ChurnModel:
    regressor: xgb.XGBRegressor  # daily hazard per piece, uncalibrated
    names: tuple[str, ...]  # the feature columns X must have, in order
    horizons: tuple[int, ...] = HORIZONS
    calibrated: CalibratedClassifierCV | None = None
    calibration: str = "none"
    calibration_scores: dict = field(default_factory=dict)  # held-out validation Brier of each method tried
    params: dict = field(default_factory=dict)
    search: list[dict] = field(default_factory=list)

    def daily_hazard(self, X: np.ndarray) -> np.ndarray:
        """(rows, pieces) predicted churns per day at risk in each piece."""
        X = np.asarray(X, dtype=np.float32)
        rate = self.regressor.predict(hazard.all_pieces(X), base_margin=np.zeros(len(X) * (len(hazard.EDGES) - 1)))
        return rate.reshape(len(hazard.EDGES) - 1, len(X)).T.astype(np.float64)

    def log_cumulative(self, X: np.ndarray) -> np.ndarray:
        """(rows, horizons) log of the raw cumulative hazard: the one score calibration maps to a probability."""
        return np.log(np.clip(hazard.cumulative_hazard(self.daily_hazard(X), self.horizons), 1e-12, None))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(rows, horizons) churn probabilities, non-decreasing along each row (see the module docstring)."""
        z = self.log_cumulative(X)
        if self.calibrated is None:
            return hazard.to_probability(np.exp(z))
        return self.calibrated.predict_proba(z.reshape(-1, 1))[:, 1].reshape(z.shape)

    def contributions(self, X: np.ndarray, horizon: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """XGBoost's exact SHAP contributions to log daily hazard, averaged over the pieces inside ``horizon``
        with each piece weighted by its share of the cumulative hazard. Returns (contributions (rows,
        features), bias (rows,)); per row they sum to the weighted mean log hazard. The piece column is the
        horizon's shape, not the tutor's doing, so it is folded into the bias."""
        X = np.asarray(X, dtype=np.float32)
        # Pieces beyond the horizon weigh nothing: their SHAP values (most of the daily scoring's model time on
        # a deep model) are not computed.
        inside = np.flatnonzero(hazard.overlap(horizon) > 0)
        n, k = len(X), len(inside)
        pieces = hazard.with_piece(np.tile(X, (k, 1)), np.repeat(inside, n))
        dm = xgb.DMatrix(pieces, base_margin=np.zeros(n * k))
        # The same trees as predict(): early stopping keeps the booster's later rounds, which predict() skips.
        trees = (0, self.regressor.best_iteration + 1) if hasattr(self.regressor, "best_iteration") else (0, 0)
        contrib = self.regressor.get_booster().predict(dm, pred_contribs=True, iteration_range=trees).reshape(k, n, -1)
        w = self.daily_hazard(X)[:, inside] * hazard.overlap(horizon)[inside][None, :]
        w = w / np.clip(w.sum(axis=1, keepdims=True), 1e-300, None)
        mean = np.einsum("nk,knf->nf", w, contrib)
        f = len(self.names)
        return mean[:, :f], mean[:, f:].sum(axis=1)


class _HorizonScore(ClassifierMixin, BaseEstimator):
    """The frozen raw model as a scikit-learn classifier over one column, log cumulative hazard, so that
    CalibratedClassifierCV(FrozenEstimator(...)) fits only the calibrator."""

    def __init__(self) -> None:
        self.classes_ = np.array([0, 1])

    def fit(self, X: np.ndarray, y: np.ndarray) -> _HorizonScore:
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)[:, 0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(np.int64)


def calibrator_is_monotone(calibrated: CalibratedClassifierCV) -> bool:
    """True when every fitted calibrator maps a higher raw score to a probability at least as high."""
    for cc in calibrated.calibrated_classifiers_:
        for cal in cc.calibrators:
            if hasattr(cal, "increasing_"):  # IsotonicRegression
                if not cal.increasing_:
                    return False
            elif hasattr(cal, "a_"):  # sklearn's Platt: p = 1 / (1 + exp(a * f + b)), increasing iff a <= 0
                if cal.a_ > 0:
                    return False
            else:
                return False
    return True


def _calibrator(method: str, z: np.ndarray, y: np.ndarray) -> CalibratedClassifierCV:
    return CalibratedClassifierCV(FrozenEstimator(_HorizonScore()), method=method).fit(z.reshape(-1, 1), y)


def choose_calibration(z: np.ndarray, y: np.ndarray, day: np.ndarray, methods: tuple[str, ...] = CAL_METHODS,
                       *, reach: float | None = None) -> tuple[CalibratedClassifierCV | None, str, dict]:
    """Pick isotonic, sigmoid or none on validation without scoring a calibrator on what it was fitted to: fit
    on the earlier half of the validation days, compare Brier on the later half (the raw model competes as
    "none"), then refit the winner on all of validation. A calibrator that would reverse the order is never
    chosen.

    ``reach``: the highest score the calibrator will be applied to. Isotonic regression is flat beyond the
    scores it was fitted on, so when validation holds only short-horizon labels it would cap every 30- and
    90-day probability at the highest short-horizon rate (0.13 seen on inactivity labels, with every tutor
    then Low); it is not considered when ``reach`` exceeds the fitted range. Platt extrapolates smoothly."""
    if reach is not None and len(z) and reach > z.max():
        methods = tuple(m for m in methods if m != "isotonic")
    if len(np.unique(y)) < 2:
        return None, "none", {}
    days = np.unique(day)
    first, second = day < days[len(days) // 2], day >= days[len(days) // 2]
    scores = {"none": brier(y[second], hazard.to_probability(np.exp(z[second])))} if second.any() else {}
    if len(np.unique(y[first])) == 2 and second.any():
        for method in methods:
            cal = _calibrator(method, z[first], y[first])
            if calibrator_is_monotone(cal):
                scores[method] = brier(y[second], cal.predict_proba(z[second].reshape(-1, 1))[:, 1])
    method = min(scores, key=scores.get) if scores else "none"
    if method == "none":
        return None, method, scores
    cal = _calibrator(method, z, y)
    return (cal, method, scores) if calibrator_is_monotone(cal) else (None, "none", scores)


def tune(train: hazard.Pieces, val: hazard.Pieces, grid: tuple[dict, ...] = GRID
         ) -> tuple[xgb.XGBRegressor, dict, list[dict]]:
    """Fit every grid point with early stopping on validation and keep the lowest validation Poisson loss."""
    best, best_loss, best_params, search = None, np.inf, {}, []
    for params in grid:
        model = _regressor(params, n_estimators=MAX_TREES, early_stopping_rounds=EARLY_STOP)
        model.fit(train.X, train.events, base_margin=np.log(train.exposure), eval_set=[(val.X, val.events)],
                  base_margin_eval_set=[np.log(val.exposure)], verbose=False)
        rate = model.predict(val.X, base_margin=np.zeros(len(val.X)))
        loss = poisson_nll(val.events, val.exposure, rate)
        point = {**params, "trees": int(model.best_iteration) + 1}
        search.append({**point, "val_poisson_nll": round(loss, 6)})
        if loss < best_loss:
            best, best_loss, best_params = model, loss, point
    return best, best_params, search


def timed(fn, *args, **kw):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - started
