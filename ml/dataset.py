"""The churn model's temporal 70/15/15 split and the examples each segment gives.

Feature dates (not tutors) are cut in time: train, validation, test. Each segment sees churn only as it was
known at its end (the start of validation for training, the start of test for validation, the end of
observation for test), less the labelling lag (ml/labels.py ChurnTimes): training pieces (ml/hazard.py) are
cut there, and horizon labels are used only where the whole window has closed by then. So no training label
depends on anything that happens during validation or test, and no validation label on the test period.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ml.features import FeatureFrame
from ml.hazard import Pieces, build_pieces
from ml.labels import ChurnTimes

SEGMENTS = ("train", "val", "test")
_DAY = np.timedelta64(1, "D")


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
class Segments:
    frame: FeatureFrame
    times: ChurnTimes
    split: TemporalSplit
    segment: np.ndarray  # int8 per feature row
    cut: tuple[np.datetime64, np.datetime64, np.datetime64]  # what each segment may know, datetime64[s]

    @property
    def as_of(self) -> np.ndarray:
        return self.frame.days.astype("datetime64[s]")

    def pieces(self, seg: int) -> Pieces:
        rows = np.flatnonzero(self.segment == seg)
        return build_pieces(self.frame.X, self.as_of, self.times, rows, self.cut[seg])

    def horizon_examples(self, seg: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, y) of segment ``seg`` whose ``horizon``-day window closed by the segment's cut."""
        rows = np.flatnonzero(self.segment == seg)
        y, closed = self.times.horizon_labels(rows, self.as_of[rows], horizon, self.cut[seg])
        return rows[closed], y[closed].astype(np.float32)


def segments(frame: FeatureFrame, times: ChurnTimes,
             fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)) -> Segments:
    split = temporal_split(frame.days, times.observed_end.astype(object).replace(tzinfo=UTC), fractions)
    cut = (split.val_start.astype("datetime64[s]"), split.test_start.astype("datetime64[s]"), split.observed_end)
    return Segments(frame=frame, times=times, split=split, segment=split.segment_of(frame.days), cut=cut)
