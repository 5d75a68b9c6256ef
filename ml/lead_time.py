"""Lead time of the churn model's warnings: for each observed churn, how many days before it the model first
put the tutor at High or Critical risk (the issue's "days between first High/Critical prediction and actual
churn").

Pure arithmetic over per-row arrays so it can be checked by hand. A churn is identified by (tutor, churn
instant) from the rows' ``event_at`` (ml/labels.py ChurnTimes: the first churn at or after the row's day), so
a tutor who returns and churns again under the inactivity definition is two churns, and a flag raised before
an earlier churn never counts for a later one. Only flags on feature days in [churn day - window, churn day]
count: a High level months earlier is a different story, not a warning of this churn. A feature row describes
the tutor as of its day's 00:00 UTC, so a flag on the churn day itself is a lead of 0 days.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FLAG_LEVELS = ("High", "Critical")
WINDOW_DAYS = 90


@dataclass(frozen=True)
class LeadTimes:
    tutor_ids: np.ndarray  # one per observed churn, sorted by tutor then churn
    churn_days: np.ndarray  # datetime64[D]
    first_flag: np.ndarray  # datetime64[D]: first flagged day in the window, NaT when never flagged
    window_days: int

    @property
    def churns(self) -> int:
        return len(self.churn_days)

    @property
    def tutors(self) -> int:
        return len(np.unique(self.tutor_ids))

    @property
    def flagged(self) -> int:
        return int((~np.isnat(self.first_flag)).sum())

    @property
    def share_flagged(self) -> float:
        return self.flagged / self.churns if self.churns else float("nan")

    @property
    def leads(self) -> np.ndarray:
        """Days from the first flag to the churn, for the churns that were flagged ahead."""
        hit = ~np.isnat(self.first_flag)
        return (self.churn_days[hit] - self.first_flag[hit]).astype(np.int64)

    def quartiles(self) -> tuple[float, float, float]:
        """(25th percentile, median, 75th percentile) of the lead in days; NaN when nothing was flagged."""
        if not self.flagged:
            return (float("nan"),) * 3
        q1, q2, q3 = np.percentile(self.leads, [25, 50, 75])
        return float(q1), float(q2), float(q3)


def lead_times(tutor_ids: np.ndarray, days: np.ndarray, levels: Sequence[str], event_at: np.ndarray, *,
               start: np.datetime64, end: np.datetime64, window_days: int = WINDOW_DAYS,
               flag_levels: Sequence[str] = FLAG_LEVELS) -> LeadTimes:
    """Lead times of the churns with ``start <= churn instant < end``.

    tutor_ids, days (datetime64[D]), levels (risk level per row) and event_at (datetime64, NaT when no churn
    follows the row) are parallel per-row arrays. ``end`` should stop at what is known: the last feature day's
    end, and no later than the instant up to which churn is decided (ChurnTimes.seen_until), so a pending,
    unconfirmed churn is not counted as one."""
    tutor_ids, days = np.asarray(tutor_ids), np.asarray(days).astype("datetime64[D]")
    event_at = np.asarray(event_at).astype("datetime64[s]")
    if not (len(tutor_ids) == len(days) == len(levels) == len(event_at)):
        raise ValueError("tutor_ids, days, levels and event_at must have one entry per row")
    start, end = np.datetime64(start, "s"), np.datetime64(end, "s")
    idx = np.flatnonzero(~np.isnat(event_at) & (event_at >= start) & (event_at < end))
    if not len(idx):
        empty = np.array([], dtype="datetime64[D]")
        return LeadTimes(tutor_ids=tutor_ids[:0], churn_days=empty, first_flag=empty, window_days=window_days)

    tutors, t_code = np.unique(tutor_ids[idx], return_inverse=True)
    keys, churn = np.unique(np.column_stack([t_code, event_at[idx].astype(np.int64)]), axis=0, return_inverse=True)
    churn = churn.ravel()
    churn_day = event_at[idx].astype("datetime64[D]")
    lead = (churn_day - days[idx]).astype(np.int64)
    flag = np.isin(np.asarray(levels, dtype=object)[idx], list(flag_levels))
    counts = flag & (lead >= 0) & (lead <= window_days)

    # The first flagged day of a churn is its largest lead.
    best = np.full(len(keys), -1, dtype=np.int64)
    np.maximum.at(best, churn[counts], lead[counts])
    key_day = keys[:, 1].astype("datetime64[s]").astype("datetime64[D]")
    first = np.where(best >= 0, key_day - best.clip(0).astype("timedelta64[D]"), np.datetime64("NaT", "D"))
    return LeadTimes(tutor_ids=tutors[keys[:, 0]], churn_days=key_day, first_flag=first.astype("datetime64[D]"),
                     window_days=window_days)
