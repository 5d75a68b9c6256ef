"""The platform's clock: when sessions are booked and when tutors are online, from the scenario's weights."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from synth.scenario import LoadedScenario

SLOT_MINUTES = 5  # sessions start on 5-minute slots, so a 15-second tick and a day share one distribution
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES


@dataclass(frozen=True)
class Calendar:
    weekday_factor: np.ndarray  # Mon..Sun, averaging 1 so a week totals 7 x the daily volume
    slot_profile: dict[bool, np.ndarray]  # key: is weekend; probability per 5-minute slot
    online_profile: np.ndarray  # tutor activity (logins, messages) per hour
    online_cdf: np.ndarray
    morning: tuple[int, int]  # minutes of the day
    monday_factor: float
    morning_factor: float


def _slots(hours: list[float], minute_weights: list[float]) -> np.ndarray:
    w = np.repeat(np.array(hours), 60 // SLOT_MINUTES) * np.tile(np.array(minute_weights), 24)
    return w / w.sum()


@lru_cache(maxsize=8)
def calendar_for(scenario: LoadedScenario) -> Calendar:
    c, ns = scenario.scenario.calendar, scenario.scenario.no_shows
    weekday = np.array(c.weekday)
    online = np.array(c.login_hours) / sum(c.login_hours)
    return Calendar(
        weekday_factor=weekday / weekday.mean(),
        slot_profile={False: _slots(c.weekday_hours, c.minute_weights), True: _slots(c.weekend_hours, c.minute_weights)},
        online_profile=online, online_cdf=np.concatenate([[0.0], np.cumsum(online)]),
        morning=(60 * ns.morning_hours[0], 60 * ns.morning_hours[1]),
        monday_factor=ns.monday_factor, morning_factor=ns.morning_factor,
    )


def online_cdf_at(cal: Calendar, seconds: float) -> float:
    """Share of a day's tutor activity that falls before ``seconds`` after midnight."""
    h = min(23, int(seconds // 3600))
    return float(cal.online_cdf[h] + cal.online_profile[h] * (seconds - 3600 * h) / 3600)


def online_times(cal: Calendar, q: np.ndarray) -> np.ndarray:
    """Seconds after midnight for quantiles ``q`` of the day's tutor activity (inverse of online_cdf_at)."""
    h = np.clip(np.searchsorted(cal.online_cdf, q, side="right") - 1, 0, 23)
    return 3600 * h + (q - cal.online_cdf[h]) / cal.online_profile[h] * 3600
