"""Behavioural archetypes (PRD §1.1) and the calendar the simulated platform runs on.

Everything here is a plain number so that a later issue can move it into rules/config without touching the
engine. Ratings are on the 1-5 scale, probabilities are per scheduled session, login rates per day.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.tutors.models import Archetype


@dataclass(frozen=True)
class Trajectory:
    """How far a tutor's behaviour has moved once their decline is complete (progress 1.0).

    Progress ramps linearly from 0 at the decline start to 1 at the decline end and is interpolated in
    between, so one set of numbers describes both "slowly slipping" and "about to leave".
    """

    activity: float = 1.0  # multiplier on session volume
    rating: float = 0.0  # added to the tutor's mean rating
    engagement: float = 0.0
    reschedule: float = 0.0
    no_show: float = 0.0
    late: float = 0.0
    objectives: float = 0.0
    logins: float = 1.0  # multiplier on daily logins
    churns: bool = False  # True: nothing at all after the churn day


@dataclass(frozen=True)
class ArchetypeProfile:
    archetype: Archetype
    share: float
    rating_mean: float
    rating_spread: float  # between-tutor standard deviation; New tutors are "variable"
    engagement_mean: float
    reschedule_p: float
    no_show_p: float
    late_p: float
    late_mean_minutes: float
    objectives_p: float
    technical_p: float
    logins_per_day: float
    trajectory: Trajectory = Trajectory()


PROFILES: dict[Archetype, ArchetypeProfile] = {
    p.archetype: p
    for p in (
        ArchetypeProfile(Archetype.high_performer, 0.30, 4.70, 0.10, 0.88, 0.025, 0.004, 0.05, 3.0, 0.92, 0.02, 1.6),
        ArchetypeProfile(
            Archetype.at_risk, 0.20, 4.40, 0.15, 0.80, 0.060, 0.015, 0.10, 5.0, 0.84, 0.04, 1.4,
            # Appendix C: ~-45% volume, rating 4.5 -> 3.8, reschedules and no-shows climb, logins fade.
            Trajectory(activity=0.50, rating=-0.8, engagement=-0.22, reschedule=0.16, no_show=0.05,
                       late=0.20, objectives=-0.22, logins=0.40),
        ),
        ArchetypeProfile(Archetype.new, 0.25, 4.05, 0.30, 0.72, 0.070, 0.018, 0.16, 6.0, 0.74, 0.06, 1.8),
        ArchetypeProfile(Archetype.steady, 0.20, 4.20, 0.12, 0.76, 0.050, 0.010, 0.10, 5.0, 0.82, 0.04, 1.3),
        ArchetypeProfile(
            Archetype.churner, 0.05, 4.35, 0.15, 0.78, 0.080, 0.020, 0.12, 5.0, 0.80, 0.05, 1.3,
            Trajectory(activity=0.35, rating=-0.9, engagement=-0.28, reschedule=0.25, no_show=0.08,
                       late=0.30, objectives=-0.28, logins=0.15, churns=True),
        ),
    )
}

# Decline timing, in days relative to the world's horizon (the end of the backfill span).
AT_RISK_DECLINE_START = (-60.0, -20.0)  # uniform range: when the slide begins
AT_RISK_DECLINE_LENGTH = (35.0, 70.0)  # so most at-risk tutors are still sliding when the live feed starts
CHURN_DAY_PAST = (-35.0, -15.0)  # most churners have been silent 15+ days at the horizon (inactivity churn)
CHURN_DAY_FUTURE = (1.0, 10.0)  # ... and a few leave during the live feed, so the demo shows one happen
CHURN_IN_FUTURE_SHARE = 0.25
CHURNER_DECLINE_LENGTH = (18.0, 30.0)  # Appendix C: ~25 days from first slip to the last session

TENURED_ONBOARDING_DAYS_BEFORE_EPOCH = (30.0, 900.0)
NEW_TENURE_AT_HORIZON = (1.0, 29.0)  # PRD: New tutors have < 30 days tenure
NEW_RAMP_DAYS = 21.0  # Appendix C: 3 sessions on day 1, full load after ~3 weeks
NEW_RAMP_FLOOR = 0.25
NEW_QUALITY_GAP = 0.35  # extra rating deficit at tenure 0, fading as the tutor learns ...
NEW_QUALITY_GAP_DAYS = 30.0  # ... with this time constant

# First sessions: every tutor rates a little lower with a stranger; newer tutors much lower (PRD §1 rule 3).
FIRST_SESSION_PENALTY = 0.15
FIRST_SESSION_TENURE_PENALTY = 0.60
FIRST_SESSION_TENURE_DAYS = 45.0

# Share of a tutor's sessions that start a new pairing (PRD: first sessions are ~10-15% of volume).
NEW_PAIRING_P = 0.11
NEW_TUTOR_NEW_PAIRING_P = 0.30

TUTOR_INITIATED_RESCHEDULE_SHARE = 0.982  # PRD Pattern 2
TUTOR_RESCHEDULE_REASONS = ("personal", "scheduling_conflict", "illness", "other_commitment", "technical")
TUTOR_RESCHEDULE_REASON_P = (0.35, 0.35, 0.12, 0.12, 0.06)
SHORT_NOTICE_P = 0.30  # share of reschedules requested < 24 h ahead; rises to 0.8 as a tutor declines
SHORT_NOTICE_P_DECLINED = 0.80

FEEDBACK_P = 0.80
FREE_TEXT_P = 0.65
FREE_TEXT_P_LOW = 0.90  # unhappy students are the ones who write

SESSION_DURATIONS = np.array([30, 45, 60, 90])
SESSION_DURATION_P = np.array([0.15, 0.15, 0.60, 0.10])

# --- Calendar. The simulation treats UTC as the students' local clock. ---------------------------------
SLOT_MINUTES = 5
# Relative demand per weekday (Mon..Sun), normalised below to average 1 so a week totals 7 x the daily target.
_WEEKDAY = np.array([1.15, 1.15, 1.12, 1.10, 0.95, 0.70, 0.83])
WEEKDAY_FACTOR = _WEEKDAY / _WEEKDAY.mean()
# Hour-of-day demand: school-day afternoons and evenings peak; weekends spread across the day.
_WEEKDAY_HOURS = np.array([0.05, 0.02, 0.01, 0.01, 0.01, 0.03, 0.2, 0.5, 0.8, 1.0, 1.0, 1.0,
                           1.2, 1.3, 1.6, 3.5, 4.5, 4.5, 5.0, 5.0, 4.0, 2.5, 1.0, 0.3])
_WEEKEND_HOURS = np.array([0.05, 0.02, 0.01, 0.01, 0.01, 0.03, 0.1, 0.5, 1.5, 2.5, 3.0, 3.0,
                           2.8, 2.8, 3.0, 3.0, 3.0, 2.8, 2.5, 2.2, 1.8, 1.0, 0.5, 0.2])
# Sessions are booked on the hour or half hour far more than at odd minutes.
_MINUTE_WEIGHTS = np.array([8.0, 0.3, 0.3, 2.0, 0.3, 0.3, 5.0, 0.3, 0.3, 2.0, 0.3, 0.3])


def _slot_profile(hours: np.ndarray) -> np.ndarray:
    w = np.repeat(hours, 60 // SLOT_MINUTES) * np.tile(_MINUTE_WEIGHTS, 24)
    return w / w.sum()


SLOT_PROFILE = {False: _slot_profile(_WEEKDAY_HOURS), True: _slot_profile(_WEEKEND_HOURS)}  # key: is weekend
# Tutors log in through the waking day, a little ahead of the teaching peak (session prep).
_LOGIN_HOURS = np.array([0.05, 0.02, 0.01, 0.01, 0.02, 0.1, 0.4, 0.9, 1.2, 1.3, 1.3, 1.3,
                         1.4, 1.6, 2.0, 2.2, 2.0, 1.8, 1.6, 1.4, 1.2, 0.9, 0.5, 0.2])
LOGIN_HOUR_PROFILE = _LOGIN_HOURS / _LOGIN_HOURS.sum()

# No-shows cluster on Monday and in morning slots (PRD §1 rule 3); these multiply the tutor's base rate.
MONDAY_NO_SHOW_FACTOR = 1.8
MORNING_NO_SHOW_FACTOR = 1.8
MORNING_HOURS = range(5, 12)


def assign_archetypes(rng: np.random.Generator, n: int) -> list[Archetype]:
    """Exact shares by largest remainder, then shuffled: the population mix never drifts with the seed."""
    kinds = list(PROFILES)
    quotas = np.array([PROFILES[k].share * n for k in kinds])
    counts = np.floor(quotas).astype(int)
    for i in np.argsort(-(quotas - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    pool = [k for k, c in zip(kinds, counts, strict=True) for _ in range(c)]
    order = rng.permutation(n)
    return [pool[i] for i in order]
