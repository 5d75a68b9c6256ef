"""Stacked training examples for the multi-horizon churn model and their temporal 70/15/15 split.

One example per (feature row, horizon): the row's 35 features plus ``log_horizon_days``. A single classifier
over these examples, monotone non-decreasing in the horizon feature (ml/train.py), gives P(1d) <= P(7d) <=
P(30d) <= P(90d) for every tutor by construction instead of by post-hoc sorting of four separate models.

Split. Feature dates (not tutors) are cut 70/15/15 in time: train, validation, test. An example of horizon h
on day d in a segment is kept only when its label window [d, d + h days) - plus the delay before a label is
decided (13 days for inactivity labels, none for truth) - closes at or before the end of its segment: the start
of validation for training, the start of test for validation, the end of observation for test. So no training
label depends on anything that happens during validation or test, and no validation label on the test period.

Why per horizon rather than ``Labels.trainable``: ``trainable`` closes every horizon at the longest one (its
``label_end`` is d + 90 days), which is the safe rule for per-row models but would drop every 1/7/30-day
example from the last 90 days before each cut; stacked examples carry their own horizon, so each can use
exactly its own window. Only rows of tutors still at risk on d (not churned before) are examples.

Consequence worth knowing: a segment only holds 90-day examples from days at least 90 days before its end, so
the 90-day horizon needs a long world (see bench/model_quality.py) to appear in validation and test at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ml.features import FeatureFrame
from ml.labels import Labels

HORIZON_FEATURE = "log_horizon_days"  # log keeps the 1/7/30/90 spacing even for the linear baseline
SEGMENTS = ("train", "val", "test")
_DAY = np.timedelta64(1, "D")


def horizon_value(h: int | np.ndarray) -> np.ndarray:
    return np.log(np.asarray(h, dtype=np.float64)).astype(np.float32)


@dataclass(frozen=True)
class TemporalSplit:
    val_start: np.datetime64  # datetime64[D]: first validation feature day (its midnight is the cut)
    test_start: np.datetime64  # first test feature day
    observed_end: np.datetime64  # datetime64[s]: labels are decided only up to here

    def segment_of(self, days: np.ndarray) -> np.ndarray:
        """0 train, 1 val, 2 test for each feature day."""
        return (days >= self.val_start).astype(np.int8) + (days >= self.test_start).astype(np.int8)

    def segment_end(self, segment: np.ndarray) -> np.ndarray:
        ends = np.array([self.val_start.astype("datetime64[s]"), self.test_start.astype("datetime64[s]"),
                         self.observed_end], dtype="datetime64[s]")
        return ends[segment]


def temporal_split(days: np.ndarray, observed_until: datetime,
                   fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)) -> TemporalSplit:
    """Cut the distinct feature days in time order: the first 70% train, the next 15% validation, the rest test."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError("fractions must sum to 1")
    unique = np.unique(days.astype("datetime64[D]"))
    if len(unique) < 3:
        raise ValueError("need at least three feature days for a three-way temporal split")
    i_val = min(max(1, round(fractions[0] * len(unique))), len(unique) - 2)
    i_test = min(max(i_val + 1, round((fractions[0] + fractions[1]) * len(unique))), len(unique) - 1)
    seen = np.datetime64(observed_until.astimezone(UTC).replace(tzinfo=None), "s")
    return TemporalSplit(val_start=unique[i_val], test_start=unique[i_test], observed_end=seen)


@dataclass(frozen=True)
class Stacked:
    X: np.ndarray  # float32 (examples, features + 1): the row's features, then the horizon feature
    y: np.ndarray  # float32 (examples,): 0/1
    row: np.ndarray  # int64: index of the example's feature row in the FeatureFrame
    horizon: np.ndarray  # int64: the horizon in days
    segment: np.ndarray  # int8: 0 train, 1 val, 2 test
    names: tuple[str, ...]

    def part(self, segment: int, horizon: int | None = None) -> np.ndarray:
        mask = self.segment == segment
        return mask if horizon is None else mask & (self.horizon == horizon)


def stack_features(X: np.ndarray, horizons: tuple[int, ...]) -> np.ndarray:
    """(n, f) feature rows -> (n * len(horizons), f + 1), horizon-major: block j is every row at horizons[j]."""
    n = len(X)
    hcol = np.repeat(horizon_value(np.array(horizons)), n)[:, None]
    return np.hstack([np.tile(X, (len(horizons), 1)), hcol]).astype(np.float32)


def build_stacked(frame: FeatureFrame, labels: Labels, split: TemporalSplit) -> Stacked:
    as_of = frame.days.astype("datetime64[s]")
    segment = split.segment_of(frame.days)
    seg_end = split.segment_end(segment)
    # Delay between the end of the longest window and when labels are decided (0 for truth, 13 d for inactivity).
    lag = labels.label_end - (as_of + max(labels.horizons) * _DAY)
    rows, hs, ys = [], [], []
    for j, h in enumerate(labels.horizons):
        keep = labels.at_risk & labels.known[:, j] & (as_of + h * _DAY + lag <= seg_end)
        idx = np.flatnonzero(keep)
        rows.append(idx)
        hs.append(np.full(len(idx), h, dtype=np.int64))
        ys.append(labels.y[idx, j])
    row, horizon = np.concatenate(rows), np.concatenate(hs)
    X = np.hstack([frame.X[row], horizon_value(horizon)[:, None]]).astype(np.float32)
    return Stacked(X=X, y=np.concatenate(ys).astype(np.float32), row=row, horizon=horizon,
                   segment=segment[row], names=(*frame.names, HORIZON_FEATURE))
