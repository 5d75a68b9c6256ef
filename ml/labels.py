"""Churn targets for feature rows: churned within 1, 7, 30, 90 days of the row's as-of instant (d 00:00 UTC).

Two sources, one shape:
- truth: the synthetic engine's recorded churn instants. This product module never reads the simulation's
  truth tables (tests/integration/test_truth_privacy.py guards that), so the caller loads them and hands
  them in as a ``ChurnTruth``;
- inactivity (real data, no truth): the PRD §1.4 inactivity definition as the product applies it
  (domain/evaluation/batch.py: no session scheduled in the last 14 days). A tutor whose last session is on
  day L and who has none on days L+1..L+14 churned on day L+1. Tutors with no session yet count from their
  onboarding day, as if they had taught on it.

A label is unknown (``known`` False) when the data cannot decide it yet: the window reaches past what truth
covers, or, for inactivity, the 14 days that would confirm a churn inside the window are not all observed.
``label_end`` is the instant by which every horizon's label is decided, so a temporal split keeps a training
row only if its label_end is at or before the split instant. ``at_risk`` is False for rows of tutors who had
already churned before the row's as-of (nothing left to predict).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session

from domain.events.models import TutorEvent
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor
from ml.features import FeatureFrame

HORIZONS = (1, 7, 30, 90)
INACTIVE_AFTER_DAYS = 14  # rules/scoring.yaml population.inactive_after_days; the PRD's inactivity threshold
_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class ChurnTruth:
    """Recorded churn instants (None: had not churned by ``observed_until``) for the tutors of a world."""

    churned_at: Mapping[str, datetime | None]
    observed_until: datetime


@dataclass(frozen=True)
class Labels:
    y: np.ndarray  # float32 (rows, horizons): 1 churned within h days, 0 not, NaN unknown
    known: np.ndarray  # bool (rows, horizons)
    at_risk: np.ndarray  # bool (rows,): not churned before as-of
    label_end: np.ndarray  # datetime64[s] (rows,): when every horizon's label is decided
    horizons: tuple[int, ...]
    source: str  # "truth" | "inactivity"

    def trainable(self, split: datetime, horizon: int) -> np.ndarray:
        """Rows usable for training a ``horizon`` model with a temporal split at ``split``: at risk, label known,
        and the whole label window closed at or before the split."""
        j = self.horizons.index(horizon)
        return self.at_risk & self.known[:, j] & (self.label_end <= _dt64(split))


def _dt64(ts: datetime) -> np.datetime64:
    return np.datetime64(ts.astimezone(UTC).replace(tzinfo=None), "s")


def _as_of(rows: FeatureFrame) -> np.ndarray:
    return rows.days.astype("datetime64[s]")


def truth_labels(rows: FeatureFrame, truth: ChurnTruth, horizons: Sequence[int] = HORIZONS) -> Labels:
    """Churned within h days: as_of <= churned_at < as_of + h days."""
    never = np.datetime64("9999-12-31T00:00:00")
    churned = np.array([_dt64(c) if (c := truth.churned_at.get(t)) is not None else never for t in rows.tutor_ids],
                       dtype="datetime64[s]")
    as_of, seen = _as_of(rows), _dt64(truth.observed_until)
    ends = np.stack([as_of + h * _DAY for h in horizons], axis=1)
    positive = (churned[:, None] >= as_of[:, None]) & (churned[:, None] < ends)
    # A recorded churn is certain; "no churn" is only known for windows that truth covers entirely.
    known = positive | (ends <= seen)
    return Labels(y=np.where(known, positive, np.nan).astype(np.float32), known=known, at_risk=churned >= as_of,
                  label_end=as_of + max(horizons) * _DAY, horizons=tuple(horizons), source="truth")


def _session_days(db: Session, tutor_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Distinct UTC days with a scheduled session, per tutor, over all time (inactivity needs the full gaps)."""
    s = TutoringSession
    stamps = db.execute(select(s.tutor_id, s.scheduled_start).where(s.tutor_id.in_(list(tutor_ids)))).all()
    out: dict[str, list] = {}
    for t, ts in stamps:
        out.setdefault(t, []).append(np.datetime64(ts.astimezone(UTC).date(), "D"))
    return {t: np.unique(np.array(v, dtype="datetime64[D]")) for t, v in out.items()}


def observed_until(db: Session) -> datetime:
    """The end of the data: the latest session or event timestamp (what has been observed at all)."""
    latest = [db.execute(select(func.max(TutoringSession.scheduled_start))).scalar(),
              db.execute(select(func.max(TutorEvent.event_timestamp))).scalar()]
    latest = [ts for ts in latest if ts is not None]
    if not latest:
        raise ValueError("no sessions or events: nothing is observed")
    return max(latest)


def observed_from(db: Session) -> date:
    """The first UTC day of the data: the earliest session (what ``segments`` counts history from). Events are
    left out: a reschedule request is stamped days before the session it moves, ahead of the history."""
    earliest = db.execute(select(func.min(TutoringSession.scheduled_start))).scalar()
    if earliest is None:
        raise ValueError("no sessions: nothing is observed")
    return (earliest if earliest.tzinfo else earliest.replace(tzinfo=UTC)).astimezone(UTC).date()


def churn_days(active: np.ndarray, onboarding: date, observed_end: np.datetime64,
               after: int = INACTIVE_AFTER_DAYS) -> tuple[np.ndarray, np.datetime64 | None]:
    """(confirmed churn days, pending churn day or None) for one tutor by inactivity. ``active`` are the days
    with a session; ``observed_end`` the first day not fully observed. A gap after day L is a churn on L+1
    when days L+1..L+after hold no session; the last gap is pending (censored) while those days are not all
    observed."""
    days = np.unique(np.concatenate([np.array([onboarding], dtype="datetime64[D]"), active]))
    days = days[days >= np.datetime64(onboarding, "D")]
    gaps = np.diff(days).astype(np.int64)
    confirmed = list(days[:-1][gaps > after] + _DAY)
    last = days[-1]
    pending = None
    if last + (after + 1) * _DAY <= observed_end:  # days last+1..last+after all observed and empty
        confirmed.append(last + _DAY)
    else:
        pending = last + _DAY
    return np.array(confirmed, dtype="datetime64[D]"), pending


def inactivity_labels(db: Session, rows: FeatureFrame, horizons: Sequence[int] = HORIZONS, *,
                      until: datetime | None = None, after: int = INACTIVE_AFTER_DAYS) -> Labels:
    """Labels from the PRD inactivity definition. ``until``: the end of observation (default: the latest
    session or event in the database)."""
    ids = sorted(set(rows.tutor_ids.tolist()))
    onboarding = dict(db.execute(select(Tutor.tutor_id, Tutor.onboarding_date).where(Tutor.tutor_id.in_(ids))).all())
    sessions = _session_days(db, ids)
    until = until or observed_until(db)
    until_utc = until.astimezone(UTC)
    # The first day not fully observed: the day holding `until` (seen only up to that instant).
    observed_end = np.datetime64(until_utc.date(), "D")
    per_tutor = {t: churn_days(sessions.get(t, np.array([], dtype="datetime64[D]")), onboarding[t], observed_end, after)
                 for t in ids}

    n, hs = len(rows), tuple(horizons)
    y, known = np.zeros((n, len(hs)), dtype=bool), np.zeros((n, len(hs)), dtype=bool)
    at_risk = np.ones(n, dtype=bool)
    tutors = rows.tutor_ids
    for t in ids:
        idx = np.flatnonzero(tutors == t)
        d = rows.days[idx]
        confirmed, _pending = per_tutor[t]
        # Churned already: a confirmed churn day before d with no session from it up to d.
        before = np.searchsorted(confirmed, d, side="left") - 1
        last_churn = (np.where(before >= 0, confirmed[np.maximum(before, 0)], np.datetime64("NaT")) if len(confirmed)
                      else np.full(len(d), np.datetime64("NaT"), dtype="datetime64[D]"))
        active = sessions.get(t, np.array([], dtype="datetime64[D]"))
        sessions_before = np.searchsorted(active, d, side="left") - np.searchsorted(active, last_churn, side="left")
        at_risk[idx] = ~((before >= 0) & (sessions_before == 0))
        for j, h in enumerate(hs):
            lo = np.searchsorted(confirmed, d, side="left")
            hi = np.searchsorted(confirmed, d + h * _DAY, side="left")
            pos = hi > lo
            # A negative is decided once every churn day the window could hold (L+1 for a last session L on
            # days d-1..d+h-2) has had its 14 following days observed; a pending churn inside the window
            # never is, by construction.
            decided = d + (h + after - 1) * _DAY <= observed_end
            y[idx, j] = pos
            known[idx, j] = pos | decided
    label_end = _as_of(rows) + (max(hs) + after - 1) * _DAY
    return Labels(y=np.where(known, y, np.nan).astype(np.float32), known=known, at_risk=at_risk,
                  label_end=label_end, horizons=hs, source="inactivity")


@dataclass(frozen=True)
class ChurnTimes:
    """When each row's tutor next churns, for survival-style training (ml/hazard.py).

    ``event_at``: the first churn at or after the row's as-of (NaT: none recorded). A churn on day D is known
    to someone looking at the data at instant c only when D + ``lag`` <= c: no lag for truth, 13 days for
    inactivity (the 14 empty days that confirm it); the same holds for "no churn up to D". ``observed_end`` is
    the latest such c the data supports.
    """

    event_at: np.ndarray  # datetime64[s] (rows,)
    at_risk: np.ndarray  # bool (rows,)
    lag: np.timedelta64  # timedelta64[s]
    observed_end: np.datetime64  # datetime64[s]
    source: str

    def seen_until(self, cut: np.ndarray | np.datetime64) -> np.ndarray:
        """Up to when churn (or its absence) is known to someone looking at the data at instant ``cut``."""
        return np.minimum(cut, self.observed_end) - self.lag

    def horizon_labels(self, rows: np.ndarray, as_of: np.ndarray, horizon: int, cut: np.ndarray | np.datetime64
                       ) -> tuple[np.ndarray, np.ndarray]:
        """(y, closed) for "churned within ``horizon`` days of as_of" for feature ``rows`` (with ``as_of``
        their instants) as seen at ``cut``. Only rows whose whole window has closed are usable: keeping early
        positives of open windows would bias the rate."""
        end = as_of + horizon * _DAY
        event = self.event_at[rows]
        closed = self.at_risk[rows] & (end <= self.seen_until(cut))
        return closed & ~np.isnat(event) & (event < end), closed


def churn_times(db: Session, rows: FeatureFrame, *, truth: ChurnTruth | None = None,
                after: int = INACTIVE_AFTER_DAYS) -> ChurnTimes:
    """Time to the next churn for every row, from truth when given (covering every tutor, as ``labels``
    requires) and from the inactivity definition otherwise."""
    as_of = _as_of(rows)
    if truth is not None and _covers(truth, rows):
        never = np.datetime64("NaT")
        churned = np.array([_dt64(c) if (c := truth.churned_at.get(t)) is not None else never for t in rows.tutor_ids],
                           dtype="datetime64[s]")
        at_risk = np.isnat(churned) | (churned >= as_of)
        return ChurnTimes(event_at=np.where(at_risk, churned, never), at_risk=at_risk, lag=np.timedelta64(0, "s"),
                          observed_end=_dt64(truth.observed_until), source="truth")
    lab = inactivity_labels(db, rows, HORIZONS, after=after)
    until = observed_until(db).astimezone(UTC)
    observed_end = np.datetime64(until.date(), "D")
    ids = sorted(set(rows.tutor_ids.tolist()))
    onboarding = dict(db.execute(select(Tutor.tutor_id, Tutor.onboarding_date).where(Tutor.tutor_id.in_(ids))).all())
    sessions = _session_days(db, ids)
    event_at = np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[s]")
    for t in ids:
        confirmed, pending = churn_days(sessions.get(t, np.array([], dtype="datetime64[D]")), onboarding[t],
                                        observed_end, after)
        days = np.sort(np.concatenate([confirmed, [pending]] if pending is not None else [confirmed]))
        if not len(days):
            continue
        idx = np.flatnonzero(rows.tutor_ids == t)
        nxt = np.searchsorted(days, rows.days[idx], side="left")
        ok = nxt < len(days)
        event_at[idx[ok]] = days[nxt[ok]].astype("datetime64[s]")
    return ChurnTimes(event_at=np.where(lab.at_risk, event_at, np.datetime64("NaT")), at_risk=lab.at_risk,
                      lag=np.timedelta64(after - 1, "D").astype("timedelta64[s]"),
                      observed_end=observed_end.astype("datetime64[s]"), source="inactivity")


def _covers(truth: ChurnTruth, rows: FeatureFrame) -> bool:
    tutors = set(rows.tutor_ids.tolist())
    covered = {t for t in tutors if t in truth.churned_at}
    if covered and len(covered) != len(tutors):
        raise ValueError(f"truth covers {len(covered)} of the rows' tutors, not all: refusing to mix label sources")
    return bool(covered)


def labels(db: Session, rows: FeatureFrame, horizons: Sequence[int] = HORIZONS, *,
           truth: ChurnTruth | None = None) -> Labels:
    """Truth labels when truth is given and covers every row's tutor, inactivity labels when no truth is given
    or it covers none of them; a partial cover is refused rather than silently mixing two definitions."""
    if truth is not None and _covers(truth, rows):
        return truth_labels(rows, truth, horizons)
    return inactivity_labels(db, rows, horizons)
