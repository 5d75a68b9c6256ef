"""Tutor behaviour events away from sessions (PRD §1.3): logins, message responses, availability, training.

Each kind arrives as a Poisson stream over the tutor's online hours at a daily rate set by the tutor's state,
and is drawn per (tutor, piece, kind) from its own seeded stream, so a piece's events never depend on how many
sessions or other events were drawn.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from domain.events.schemas import TutorEventIn
from synth.calendar import Calendar, online_cdf_at, online_times

TRAINING_MODULES = ("first_session_excellence", "engaging_online_students", "subject_refresher",
                    "scheduling_and_reliability", "patience_and_feedback", "exam_prep_strategies")
_STREAM = {"login": 1, "msg": 3, "avail": 4, "train": 5}


def _times(cal: Calendar, rng: np.random.Generator, rate: float, day: datetime, a: datetime, b: datetime) -> list[datetime]:
    sa, sb = (a - day).total_seconds(), (b - day).total_seconds()
    lo, hi = online_cdf_at(cal, sa), online_cdf_at(cal, sb)
    n = int(rng.poisson(rate * (hi - lo)))
    if not n:
        return []
    secs = np.clip(online_times(cal, np.sort(lo + (hi - lo) * rng.random(n))), sa, np.nextafter(sb, sa))
    return [max(a, day + timedelta(seconds=s)) for s in secs.tolist()]


def tutor_events(cal: Calendar, seed: int, slot: int, tutor_id: str, day: datetime, a: datetime, b: datetime, *,
                 rates: dict[str, float], disengagement: float, response_median: float,
                 reduction_p: float) -> list[TutorEventIn]:
    """Events of one tutor in [a, b) within the UTC day starting at ``day``."""
    out: list[TutorEventIn] = []
    for kind, rate in rates.items():
        if rate <= 0:
            continue
        rng = np.random.default_rng([seed, slot, int(a.timestamp()), _STREAM[kind]])
        stamps = _times(cal, rng, rate, day, a, b)
        if not stamps:
            continue
        meta = _METADATA[kind](rng, len(stamps), disengagement, response_median, reduction_p)
        for k, (ts, md) in enumerate(zip(stamps, meta, strict=True)):
            out.append(TutorEventIn(event_id=f"e_{kind}_{tutor_id}_{ts:%Y%m%dT%H%M%S%f}_{k}", tutor_id=tutor_id,
                                    event_type=_TYPE[kind], event_timestamp=ts, metadata=md))
    return out


def _login(rng: np.random.Generator, n: int, dis: float, _m: float, _r: float) -> list[dict]:
    # Prep time before teaching shrinks as a tutor disengages ("session prep time").
    prep = np.maximum(0, np.round(rng.normal(15 * (1 - 0.6 * dis), 5, size=n))).astype(int)
    return [{"session_prep_minutes": int(p)} for p in prep]


def _message(rng: np.random.Generator, n: int, _d: float, median: float, _r: float) -> list[dict]:
    minutes = np.round(median * np.exp(0.7 * rng.standard_normal(n)), 1)
    channel = np.where(rng.random(n) < 0.7, "student_inquiry", "platform")
    return [{"response_minutes": float(m), "channel": str(c)} for m, c in zip(minutes, channel, strict=True)]


def _availability(rng: np.random.Generator, n: int, _d: float, _m: float, reduction_p: float) -> list[dict]:
    reduce = rng.random(n) < reduction_p
    hours = rng.integers(1, 7, size=n)
    return [{"change": "reduced" if r else "increased", "hours_per_week_delta": int(-h if r else h)}
            for r, h in zip(reduce, hours, strict=True)]


def _training(rng: np.random.Generator, n: int, _d: float, _m: float, _r: float) -> list[dict]:
    picks = rng.integers(0, len(TRAINING_MODULES), size=n)
    minutes = rng.integers(15, 61, size=n)
    return [{"module": TRAINING_MODULES[p], "duration_minutes": int(m)} for p, m in zip(picks, minutes, strict=True)]


_METADATA: dict[str, Callable[..., list[dict]]] = {"login": _login, "msg": _message, "avail": _availability,
                                                   "train": _training}
_TYPE = {"login": "login", "msg": "message_response", "avail": "availability_change", "train": "training_completed"}
