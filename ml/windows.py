"""Vectorised rolling windows over a (tutor, day) grid, the primitives behind ml/features.py.

Day index k on the grid means "as of midnight UTC starting day k". Every record is turned into the range of
as-of days during which it is visible in a window, so point-in-time rules (a session counts from the day after
it was scheduled, a rating from the day after its feedback was submitted, both only while inside the window)
become exact interval additions rather than per-row filtering.
"""
from __future__ import annotations

import numpy as np


def interval_sum(tutor: np.ndarray, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray | float,
                 shape: tuple[int, int]) -> np.ndarray:
    """out[t, k] = sum of weight over records of tutor t with lo <= k < hi (a difference array, then cumsum)."""
    n_tutors, n_days = shape
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), tutor.shape)
    lo_c, hi_c = np.clip(lo, 0, n_days), np.clip(hi, 0, n_days)
    keep = lo_c < hi_c  # empty intervals (e.g. feedback arriving after the window has moved past the session)
    if not keep.all():
        tutor, lo_c, hi_c, w = tutor[keep], lo_c[keep], hi_c[keep], w[keep]
    row = tutor.astype(np.int64, copy=False) * (n_days + 1)
    # bincount adds in input order, like np.add.at (all openings, then all closings) but many times faster;
    # the same order keeps every float sum bit for bit what it was.
    cells = np.bincount(np.concatenate([row + lo_c, row + hi_c]), weights=np.concatenate([w, -w]),
                        minlength=n_tutors * (n_days + 1))
    return np.cumsum(cells.reshape(n_tutors, n_days + 1), axis=1)[:, :n_days]


def window_sum(tutor: np.ndarray, day: np.ndarray, weight: np.ndarray | float, days: int,
               shape: tuple[int, int]) -> np.ndarray:
    """out[t, k] = sum of weight over records of tutor t on days [k - days, k): the product's half-open window
    [as_of - N days, as_of) when as_of is midnight starting day k."""
    return interval_sum(tutor, day + 1, day + 1 + days, weight, shape)


def last_day_before(tutor: np.ndarray, day: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """out[t, k] = the latest day < k holding a record of tutor t, or -1 when none."""
    marks = np.full(shape, -1, dtype=np.int64)
    marks[tutor, day] = day
    latest = np.maximum.accumulate(marks, axis=1)
    # Shift by one: as of day k only days before k are visible.
    return np.concatenate([np.full((shape[0], 1), -1, dtype=np.int64), latest[:, :-1]], axis=1)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (undefined, e.g. a reschedule rate with no sessions)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def window_percentiles(tutor: np.ndarray, day: np.ndarray, values: np.ndarray, days: int,
                       row_tutor: np.ndarray, row_day: np.ndarray, qs: tuple[float, ...], n_days: int,
                       chunk: int = 4096) -> np.ndarray:
    """Percentiles (numpy's linear method) of ``values`` on days [k - days, k) for each row (tutor, k);
    NaN where the window is empty. Records are sorted by (tutor, day) once, each row's window is a slice of
    that order, and the slices are gathered into a NaN-padded matrix sorted along its rows."""
    out = np.full((len(row_tutor), len(qs)), np.nan)
    if len(values) == 0 or len(row_tutor) == 0:
        return out
    key = tutor.astype(np.int64) * (n_days + 1) + day
    order = np.argsort(key, kind="stable")
    key, vals = key[order], values[order].astype(np.float64)
    row_key = row_tutor.astype(np.int64) * (n_days + 1) + row_day
    starts = np.searchsorted(key, row_key - days, side="left")
    stops = np.searchsorted(key, row_key, side="left")
    counts = stops - starts
    for a in range(0, len(row_tutor), chunk):
        s, n = starts[a:a + chunk], counts[a:a + chunk]
        width = int(n.max()) if len(n) else 0
        if width == 0:
            continue
        cols = np.arange(width)
        idx = np.minimum(s[:, None] + cols, len(vals) - 1)
        m = np.where(cols < n[:, None], vals[idx], np.nan)
        m.sort(axis=1)  # NaN padding sorts last, so the first n entries of each row are its window, ordered
        for j, q in enumerate(qs):
            pos = (n - 1) * q / 100.0
            lo = np.floor(pos).astype(np.int64).clip(0, width - 1)
            hi = np.ceil(pos).astype(np.int64).clip(0, width - 1)
            a_lo = np.take_along_axis(m, lo[:, None], axis=1)[:, 0]
            a_hi = np.take_along_axis(m, hi[:, None], axis=1)[:, 0]
            out[a:a + chunk, j] = np.where(n > 0, a_lo + (a_hi - a_lo) * (pos - lo), np.nan)
    return out
