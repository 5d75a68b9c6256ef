"""The first-session model: logistic regression (PRD: "for interpretability") in one scikit-learn pipeline
(median imputation with missing-value indicators and scaling for numbers, one-hot for the time block, weekday
and subject, unknown categories ignored), a temporal 70/15/15 split by scheduled time, C chosen on validation,
figures on test, and each prediction's reasons in plain words.

Labels need no ground truth: a first session's rating is product data. A training label is known a few hours
after its session (the feedback), so at the split's cuts at most a few hours of labels overlap the next segment.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml import metrics
from ml.first_session import CATEGORICAL, FEATURES, NUMERIC, FirstSessionTable

Progress = Callable[[str], None]
SEGMENTS = ("train", "val", "test")

# How a feature reads in a sentence: (label, format of its value). Staff-facing only.
_PHRASES: dict[str, tuple[str, str]] = {
    "tenure_days": ("tutor's time since onboarding", "{:.0f} days"),
    "avg_rating_30d": ("tutor's average rating over 30 days", "{:.2f} stars"),
    "rated_sessions_30d": ("tutor's rated sessions in 30 days", "{:.0f}"),
    "engagement_score": ("tutor's engagement score", "{:.2f}"),
    "first_session_success_rate": ("tutor's first sessions rated 4+ in 90 days", "{:.0%}"),
    "first_sessions_rated": ("tutor's rated first sessions in 90 days", "{:.0f}"),
    "student_age": ("student's age", "{:.0f}"),
    "hour_block": ("scheduled time", "{}"),
    "weekday": ("scheduled day", "{}"),
    "subject": ("subject", "{}"),
}


class NotEnoughData(ValueError):
    """The history cannot train a first-session model (too few first sessions, or a segment without poor ones)."""


def _pipeline(c: float) -> Pipeline:
    numbers = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                        ("scale", StandardScaler())])
    columns = ColumnTransformer([
        ("num", numbers, list(range(len(NUMERIC)))),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(range(len(NUMERIC), len(FEATURES)))),
    ])
    return Pipeline([("features", columns), ("lr", LogisticRegression(C=c, max_iter=5000))])


def _source(name: str) -> str:
    """The raw feature an output column of the pipeline comes from ('num__missingindicator_x1' -> FEATURES[1])."""
    part = name.split("__", 1)[1].removeprefix("missingindicator_")
    return FEATURES[int(part[1:].split("_", 1)[0])]


@dataclass
class FirstSessionModel:
    pipeline: Pipeline
    c: float
    reference: np.ndarray  # mean transformed training row: contributions are relative to an average session
    features: tuple[str, ...] = FEATURES

    @property
    def columns(self) -> list[str]:
        return list(self.pipeline.named_steps["features"].get_feature_names_out())

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(first session rated poorly) per row."""
        return self.pipeline.predict_proba(X)[:, 1]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(rows, len(features)): each raw feature's share of the log-odds against the average training session
        (a number with its missing-indicator, a category's one-hot columns, each summed into its feature)."""
        z = self.pipeline.named_steps["features"].transform(X)
        per_column = (z - self.reference) * self.pipeline.named_steps["lr"].coef_[0]
        owner = np.array([self.features.index(_source(c)) for c in self.columns])
        out = np.zeros((len(X), len(self.features)))
        np.add.at(out.T, owner, per_column.T)
        return out

    def factors(self, X: np.ndarray, top: int = 3) -> list[list[dict]]:
        """Per row, the ``top`` features raising the probability most, in plain words (none if none raise it)."""
        out = []
        for x, c in zip(X, self.contributions(X), strict=True):
            order = [j for j in np.argsort(-c, kind="stable")[:top] if c[j] > 0]
            out.append([{"feature": self.features[j], "value": _plain(x[j]), "contribution": round(float(c[j]), 4),
                         "text": describe(self.features[j], x[j], float(c[j]))} for j in order])
        return out

    def coefficients(self) -> list[dict]:
        """Every pipeline column's effect on the odds of a poor first session, strongest first: a number per
        standard deviation more, a missing value against a known one, a category against the others."""
        lr, num = self.pipeline.named_steps["lr"], self.pipeline.named_steps["features"].named_transformers_["num"]
        scale = num.named_steps["scale"].scale_
        rows = []
        for j, (name, coef) in enumerate(zip(self.columns, lr.coef_[0], strict=True)):
            feature, label = _source(name), _PHRASES[_source(name)][0]
            if "missingindicator_" in name:  # scaled 0/1: per unit of the indicator is coef / its SD
                kind, odds = "missing", math.exp(coef / scale[j]) if scale[j] else 1.0
                text = f"{label} unknown"
            elif name.startswith("num__"):
                kind, odds, text = "number", math.exp(coef), f"{label}, each {scale[j]:.3g} more (1 SD)"
            else:
                kind, odds = "category", math.exp(coef)
                text = f"{label} {name.split('__', 1)[1].split('_', 1)[1]}"
            rows.append({"column": name, "feature": feature, "kind": kind, "coefficient": round(float(coef), 4),
                         "odds_ratio": round(odds, 3),
                         "text": f"{text}: odds of a poor first session x{odds:.2f}"})
        return sorted(rows, key=lambda r: -abs(math.log(r["odds_ratio"])) if r["odds_ratio"] > 0 else 0)


def _plain(v: object) -> float | str | None:
    if isinstance(v, str):
        return v
    return None if v is None or math.isnan(float(v)) else round(float(v), 4)


def describe(feature: str, value: object, contribution: float) -> str:
    label, unit = _PHRASES[feature]
    v = _plain(value)
    shown = "unknown" if v is None else unit.format(v)
    return f"{label[0].upper()}{label[1:]} ({shown}) {'raises' if contribution > 0 else 'lowers'} the risk"


def temporal_segments(starts: np.ndarray, fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)) -> np.ndarray:
    """0 train, 1 validation, 2 test by scheduled time: the earliest 70% of sessions, the next 15%, the last 15%
    (sessions at the same instant stay together)."""
    n = len(starts)
    ordered = np.sort(starts)
    cut1 = ordered[min(n - 1, round(fractions[0] * n))]
    cut2 = ordered[min(n - 1, round((fractions[0] + fractions[1]) * n))]
    return ((starts >= cut1).astype(np.int8) + (starts >= cut2).astype(np.int8)) if n else np.zeros(0, np.int8)


def evaluate(y: np.ndarray, p: np.ndarray, *, threshold: float, bins: int = 10) -> dict:
    """The figures of one segment: ranking and calibration (ml.metrics), log loss, a reliability table and what
    an alert at ``threshold`` would do (share of sessions alerted, precision, recall). NaN becomes None (JSON)."""
    out: dict = metrics.report(y, p)
    out["log_loss"] = float(log_loss(y, p, labels=[0, 1])) if len(y) else math.nan
    alerted = p >= threshold
    out["alert"] = {"threshold": threshold, "share": float(alerted.mean()) if len(y) else math.nan,
                    "precision": float(y[alerted].mean()) if alerted.any() else math.nan,
                    "recall": float(alerted[y == 1].mean()) if (y == 1).any() else math.nan}
    edges = np.minimum((p * bins).astype(np.int64), bins - 1)
    out["calibration"] = [{"bin": f"{k / bins:.1f}-{(k + 1) / bins:.1f}", "n": int((edges == k).sum()),
                           "predicted": float(p[edges == k].mean()), "observed": float(y[edges == k].mean())}
                          for k in range(bins) if (edges == k).any()]
    return _json_safe(out)


def _json_safe(v: object) -> object:
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return None if isinstance(v, float) and math.isnan(v) else v


@dataclass
class Training:
    model: FirstSessionModel
    segments: np.ndarray
    metrics: dict = field(default_factory=dict)  # {"val": {...}, "test": {...}, "train": {...}}
    search: dict[str, float] = field(default_factory=dict)  # C -> validation log loss
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def criterion(self) -> float:
        """Validation AUC: what the champion/challenger comparison uses, as for the churn model."""
        return float(self.metrics["val"]["auc"])


def train(table: FirstSessionTable, *, poor_below: float, threshold: float, c_grid: list[float],
          min_sessions: int, min_poor: int, progress: Progress = lambda _: None) -> Training:
    began = time.perf_counter()
    if len(table) < min_sessions:
        raise NotEnoughData(f"{len(table)} rated first sessions; at least {min_sessions} are needed to train")
    y, seg = table.poor(poor_below), temporal_segments(table.starts)
    counts = {name: {"sessions": int((seg == k).sum()), "poor": int(y[seg == k].sum())} for k, name in enumerate(SEGMENTS)}
    for name, c in counts.items():
        if c["poor"] < min_poor or c["sessions"] - c["poor"] < min_poor:
            raise NotEnoughData(f"the {name} segment holds {c['poor']} poor of {c['sessions']} first sessions; "
                                f"each segment needs at least {min_poor} poor and {min_poor} good ones")
    progress("first sessions: " + ", ".join(f"{k} {c['sessions']} ({c['poor']} poor)" for k, c in counts.items()))
    Xtr, ytr, Xva, yva = table.X[seg == 0], y[seg == 0], table.X[seg == 1], y[seg == 1]
    search, best = {}, None
    for c in c_grid:
        pipe = _pipeline(c).fit(Xtr, ytr)
        search[str(c)] = float(log_loss(yva, pipe.predict_proba(Xva)[:, 1], labels=[0, 1]))
        progress(f"C={c:g}: validation log loss {search[str(c)]:.4f}")
        if best is None or search[str(c)] < search[str(best[0])]:
            best = (c, pipe)
    c, pipe = best
    reference = pipe.named_steps["features"].transform(Xtr).mean(axis=0)
    model = FirstSessionModel(pipeline=pipe, c=c, reference=reference)
    figures = {name: evaluate(y[seg == k], model.predict(table.X[seg == k]), threshold=threshold)
               for k, name in enumerate(SEGMENTS)}
    progress(f"chose C={c:g}; test AUC {figures['test']['auc']:.3f}, Brier {figures['test']['brier']:.4f}, "
             f"base rate {figures['test']['base_rate']:.3f}")
    return Training(model=model, segments=seg, metrics=figures, search=search, counts=counts,
                    seconds=time.perf_counter() - began)


__all__ = ["CATEGORICAL", "FEATURES", "NUMERIC", "FirstSessionModel", "NotEnoughData", "Training", "describe",
           "evaluate", "temporal_segments", "train"]
