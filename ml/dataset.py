"""The churn model's temporal 70/15/15 split and the examples each segment gives.

Feature dates (not tutors) are cut in time: train, validation, test. Each segment sees churn only as it was
known at its end (the start of validation for training, the start of test for validation, the end of
observation for test), less the labelling lag (ml/labels.py ChurnTimes): training pieces (ml/hazard.py) are
cut there, and horizon labels are used only where the whole window has closed by then. So no training label
depends on anything that happens during validation or test, and no validation label on the test period.

Rows from the first MIN_HISTORY_DAYS days of the data take part in nothing (segment -1): their 30-day windows
reach back before the data starts, so a tutor there looks idle when the data simply has not begun (on a
90-day backfill that costs a third of the rows and gains 0.02-0.03 AUC at 30 days). A shorter span keeps its
last two thirds (the demo's 30 days start rows on day 10), so a young install can still train.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from ml.features import FeatureFrame
from ml.hazard import Pieces, build_pieces
from ml.labels import ChurnTimes

SEGMENTS = ("train", "val", "test")
MIN_HISTORY_DAYS = 30  # the features' 30-day windows; the 90-day ones are filled in by then or soon after
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
    segment: np.ndarray  # int8 per feature row: 0 train, 1 val, 2 test, -1 too early in the data
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


def segments(frame: FeatureFrame, times: ChurnTimes, *, data_start: date | None = None,
             fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)) -> Segments:
    """Split ``frame``'s rows in time. ``data_start``: the first day of the data (ml/labels.py observed_from);
    rows less than MIN_HISTORY_DAYS after it are left out. None keeps every row (data known to reach back)."""
    eligible = np.ones(len(frame), dtype=bool)
    if data_start is not None and len(frame):
        first = np.datetime64(data_start, "D")
        span = int((frame.days.max() - first).astype(int)) + 1
        eligible = frame.days >= first + min(MIN_HISTORY_DAYS, span // 3)
    split = temporal_split(frame.days[eligible], times.observed_end.astype(object).replace(tzinfo=UTC), fractions)
    cut = (split.val_start.astype("datetime64[s]"), split.test_start.astype("datetime64[s]"), split.observed_end)
    segment = np.where(eligible, split.segment_of(frame.days), -1).astype(np.int8)
    return Segments(frame=frame, times=times, split=split, segment=segment, cut=cut)
