"""Train the multi-horizon churn model: XGBoost over stacked (row, horizon) examples, monotone in the horizon,
tuned and calibrated on the validation segment; plus the logistic-regression baseline on the same examples.

Monotonicity across horizons. XGBoost's ``monotone_constraints`` (+1 on the horizon feature, 0 elsewhere)
makes the raw probability non-decreasing in the horizon for any fixed feature row. Calibration is one
function of that raw probability shared by every example, so it preserves the order exactly when it is
non-decreasing: isotonic regression fitted with ``increasing=True`` (scikit-learn's default inside
CalibratedClassifierCV) is; Platt scaling is when its slope has the right sign, which ``calibrator_is_monotone``
checks and ``fit_model`` refuses to ship otherwise. ``predict_horizons`` therefore never sorts or clips.

Nothing here reads ground truth: labels arrive already built (ml/labels.py) from whatever the caller passed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from ml.dataset import Stacked, stack_features
from ml.labels import HORIZONS
from ml.metrics import brier

# Small on purpose: the 30 s training budget covers the whole search. Trees per config are chosen by early
# stopping on validation log-loss, so n_estimators is only a ceiling.
GRID: tuple[dict, ...] = tuple({"max_depth": d, "learning_rate": lr} for d in (3, 5) for lr in (0.05, 0.15))
MAX_TREES = 600
EARLY_STOP = 40
CAL_METHODS = ("isotonic", "sigmoid")


@dataclass
class ChurnModel:
    xgb: XGBClassifier  # the tuned, uncalibrated booster
    calibrated: CalibratedClassifierCV | None
    calibration: str  # "isotonic" | "sigmoid" | "none"
    horizons: tuple[int, ...]
    names: tuple[str, ...]
    params: dict = field(default_factory=dict)
    search: list[dict] = field(default_factory=list)  # every grid point with its validation log-loss

    def proba(self, X_stacked: np.ndarray) -> np.ndarray:
        est = self.calibrated if self.calibrated is not None else self.xgb
        return est.predict_proba(X_stacked)[:, 1]


def _xgb(params: dict, n_features: int, **extra: object) -> XGBClassifier:
    constraints = (0,) * (n_features - 1) + (1,)  # the horizon is the last column (ml/dataset.py)
    return XGBClassifier(objective="binary:logistic", tree_method="hist", eval_metric="logloss",
                         monotone_constraints=constraints, subsample=0.8, colsample_bytree=0.8,
                         min_child_weight=5, reg_lambda=1.0, n_jobs=-1, random_state=0, **params, **extra)


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def tune_xgb(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
             grid: tuple[dict, ...] = GRID) -> tuple[XGBClassifier, dict, list[dict]]:
    """Fit every grid point with early stopping on validation and keep the lowest validation log-loss."""
    (Xt, yt), (Xv, yv) = train, val
    best, best_loss, best_params, search = None, np.inf, {}, []
    for params in grid:
        model = _xgb(params, Xt.shape[1], n_estimators=MAX_TREES, early_stopping_rounds=EARLY_STOP)
        model.fit(Xt, yt, eval_set=[(Xv, yv)], verbose=False)
        loss = _logloss(yv, model.predict_proba(Xv)[:, 1])
        search.append({**params, "trees": int(model.best_iteration) + 1, "val_logloss": loss})
        if loss < best_loss:
            best, best_loss, best_params = model, loss, {**params, "trees": int(model.best_iteration) + 1}
    return best, best_params, search


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


def choose_calibration(model: XGBClassifier, X: np.ndarray, y: np.ndarray, day: np.ndarray,
                       methods: tuple[str, ...] = CAL_METHODS) -> tuple[CalibratedClassifierCV | None, str, dict]:
    """Pick isotonic or sigmoid on validation without scoring a calibrator on the examples it was fitted to:
    fit each on the earlier half of the validation days, compare Brier on the later half, then refit the
    winner on all of validation. A method whose calibrator would reverse the order is never chosen; if neither
    is usable (or validation holds one class only) the raw model is kept."""
    if len(np.unique(y)) < 2:
        return None, "none", {}
    cut = np.sort(np.unique(day))[len(np.unique(day)) // 2]
    first, second = day < cut, day >= cut
    scores: dict[str, float] = {}
    for method in methods:
        if len(np.unique(y[first])) < 2 or not second.any():
            break
        cal = CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(X[first], y[first])
        if calibrator_is_monotone(cal):
            scores[method] = brier(y[second], cal.predict_proba(X[second])[:, 1])
    if not scores:  # too little validation to hold out: fall back to the method that keeps the order, isotonic
        scores = {"isotonic": 0.0}
    method = min(scores, key=scores.get)
    cal = CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(X, y)
    if not calibrator_is_monotone(cal):
        return None, "none", scores
    return cal, method, scores


def fit_model(data: Stacked, day: np.ndarray, grid: tuple[dict, ...] = GRID) -> ChurnModel:
    """Tune on train/val, calibrate on val. ``day``: the feature day of each stacked example (for the
    calibration hold-out)."""
    tr, va = data.part(0), data.part(1)
    if not tr.any() or not va.any():
        raise ValueError("need training and validation examples")
    xgb, params, search = tune_xgb((data.X[tr], data.y[tr]), (data.X[va], data.y[va]), grid)
    calibrated, method, _ = choose_calibration(xgb, data.X[va], data.y[va], day[va])
    horizons = tuple(int(h) for h in np.unique(data.horizon)) or HORIZONS
    return ChurnModel(xgb=xgb, calibrated=calibrated, calibration=method, horizons=horizons, names=data.names,
                      params=params, search=search)


def fit_baseline(data: Stacked):  # noqa: ANN201 - a fitted sklearn Pipeline
    """Logistic regression on the same stacked examples: median imputation with missing-value indicators (NaN
    means "no such activity", informative), standardisation, L2. Trained on train + validation (no search)."""
    m = data.part(0) | data.part(1)
    pipe = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return pipe.fit(data.X[m], data.y[m])


def predict_horizons(model: ChurnModel, X: np.ndarray, horizons: tuple[int, ...] = HORIZONS) -> np.ndarray:
    """(n, len(horizons)) churn probabilities for n feature rows, one column per horizon, non-decreasing along
    each row by construction (see the module docstring)."""
    p = model.proba(stack_features(np.asarray(X, dtype=np.float32), tuple(horizons)))
    return p.reshape(len(horizons), len(X)).T


def timed(fn, *args, **kw):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - started
