"""Piecewise-constant churn hazard: the survival data the churn model is trained on, and the arithmetic that
turns hazards into P(churn within 1/7/30/90 days).

Why a hazard model (the model card repeats this). Each feature row (tutor, day d) is split into pieces of the
future [d + a, d + b) days (EDGES). A piece is one training example: the number of days the tutor was at risk
in it (its exposure) and whether the tutor churned in it. A model predicts a daily hazard per piece,
lambda_i(x) > 0, and

    P(churn within h days) = 1 - exp(-sum_i lambda_i(x) * overlap(piece_i, [0, h)))

is non-decreasing in h for every row by construction: a longer horizon only adds non-negative terms.
Training needs no closed 90-day window: a piece is cut at the instant the data stops (the split's cut, less
the labelling lag), so its exposure is what was really observed and every label it carries is decided before
the cut. That is what lets a 90-day backfill train all four horizons; a stacked classifier could only train
the 90-day horizon on rows at least 90 days older than its cut.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.labels import ChurnTimes

EDGES = (0, 1, 7, 14, 30, 60, 90)  # days after the feature date; the horizons 1/7/30/90 are piece boundaries
PIECE_FEATURE = "piece_start_days"
_DAY_S = 86400.0


@dataclass(frozen=True)
class Pieces:
    X: np.ndarray  # float32 (pieces, features + 1): the row's features, then the piece's start day
    events: np.ndarray  # float32 (pieces,): 1 churned in the piece, else 0
    exposure: np.ndarray  # float32 (pieces,): days at risk in the piece (the churn day counts)
    row: np.ndarray  # int64: the feature row
    piece: np.ndarray  # int64: index into EDGES


def _days(delta: np.ndarray) -> np.ndarray:
    return delta.astype("timedelta64[s]").astype(np.float64) / _DAY_S


def build_pieces(X: np.ndarray, as_of: np.ndarray, times: ChurnTimes, rows: np.ndarray,
                 cut: np.datetime64) -> Pieces:
    """Pieces of ``rows`` (indices into X / as_of) as known at instant ``cut``: a piece is kept while the tutor
    is still at risk and observed at its start; its exposure stops at the churn or at what is known."""
    rows = rows[times.at_risk[rows]]
    start = as_of[rows]
    seen = _days(times.seen_until(cut) - start)  # days observed after the feature date
    ev = times.event_at[rows]
    t_event = np.where(np.isnat(ev), np.inf, _days(ev - start))
    t_event = np.where(t_event < seen, t_event, np.inf)  # a churn nobody could see yet is not an event
    out_rows, out_piece, out_exp, out_ev = [], [], [], []
    for i, (a, b) in enumerate(zip(EDGES[:-1], EDGES[1:], strict=True)):
        alive = (t_event >= a) & (seen > a)
        hit = alive & (t_event < b)
        exposure = np.where(hit, np.floor(t_event) - a + 1, np.minimum(b, seen) - a)
        keep = alive & (exposure > 0)
        out_rows.append(rows[keep])
        out_piece.append(np.full(int(keep.sum()), i, dtype=np.int64))
        out_exp.append(exposure[keep])
        out_ev.append(hit[keep])
    row, piece = np.concatenate(out_rows), np.concatenate(out_piece)
    return Pieces(X=with_piece(X[row], piece), events=np.concatenate(out_ev).astype(np.float32),
                  exposure=np.concatenate(out_exp).astype(np.float32), row=row, piece=piece)


def with_piece(X: np.ndarray, piece: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.asarray(EDGES, dtype=np.float32)[piece][:, None]]).astype(np.float32)


def all_pieces(X: np.ndarray) -> np.ndarray:
    """Every row at every piece, piece-major: block i holds every row at piece i (for prediction)."""
    n = len(X)
    return with_piece(np.tile(X, (len(EDGES) - 1, 1)), np.repeat(np.arange(len(EDGES) - 1), n))


def overlap(horizon: int) -> np.ndarray:
    """Days of each piece inside [0, horizon)."""
    a, b = np.asarray(EDGES[:-1], dtype=np.float64), np.asarray(EDGES[1:], dtype=np.float64)
    return np.clip(np.minimum(b, horizon) - a, 0, None)


def cumulative_hazard(daily: np.ndarray, horizons: tuple[int, ...]) -> np.ndarray:
    """daily: (rows, pieces) daily hazards -> (rows, horizons) cumulative hazards."""
    return daily @ np.stack([overlap(h) for h in horizons], axis=1)


def to_probability(cum_hazard: np.ndarray) -> np.ndarray:
    return -np.expm1(-cum_hazard)
