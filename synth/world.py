"""The simulated population: tutors with hidden behaviour, students, and who already taught whom.

Volume. The PRD asks for ~3,000 sessions/day across ~250 tutors *and* a baseline of 15 sessions/week per
tutor (mean; range 5-30). Those cannot both hold (250 x 15 / 7 ~ 535/day). We keep the PRD's baseline on the
tutor row as each tutor's *relative* activity weight and scale the population so that, at full activity, it
books ``sessions_per_day`` on an average day of the week. A tutor's real weekly volume is therefore about
``baseline_sessions_per_week * World.volume_scale(sessions_per_day)`` (~5.6x at the defaults); anything that
compares activity with the baseline must use that scale or a tutor's own history.

Determinism. Every draw comes from ``numpy.random.default_rng(seed)`` and a Faker seeded with ``seed``, in
a fixed order and a fixed number of draws whatever ``span_days`` is, so the same arguments give the same
world. Times that depend on the span (New tutors' onboarding, churn days) are anchored to the *horizon*
``epoch + span_days``: the live feed must rebuild with the backfill's span, not a growing one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property

import numpy as np
from faker import Faker

from domain.tutors.models import Archetype, TutorStatus
from synth import archetypes as arch

SUBJECTS = ("Mathematics", "Physics", "Chemistry", "Biology", "English", "History", "Spanish",
            "Computer Science", "SAT Prep", "Economics")
_SUBJECT_POPULARITY = np.array([3.0, 1.2, 1.1, 1.1, 2.0, 0.8, 1.0, 1.2, 1.5, 0.6])
_SUBJECT_MIN_AGE = np.array([8, 13, 13, 11, 8, 10, 8, 11, 15, 14])
EDUCATION_LEVELS = ("Bachelor's", "Master's", "PhD", "Teaching Credential", "Some College")
_EDUCATION_P = np.array([0.45, 0.30, 0.08, 0.10, 0.07])
STUDENTS_PER_TUTOR = 30
DAY = timedelta(days=1)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


@dataclass(frozen=True)
class Condition:
    """A tutor's behaviour on one UTC day (the engine's unit of change)."""

    active: bool
    activity: float
    quality: float
    engagement: float
    reschedule_p: float
    no_show_p: float
    late_p: float
    late_mean_minutes: float
    objectives_p: float
    technical_p: float
    logins_per_day: float
    decline: float  # 0 = own baseline behaviour, 1 = fully declined
    tenure_days: float


INACTIVE = Condition(False, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0)


@dataclass
class WorldTutor:
    index: int
    tutor_id: str
    archetype: Archetype
    name: str
    email: str
    onboarding_date: date
    subjects: tuple[str, ...]
    education_level: str
    location: str
    baseline_sessions_per_week: float
    quality: float
    engagement: float
    reschedule_p: float
    no_show_p: float
    late_p: float
    objectives_p: float
    logins_per_day: float
    decline_start: datetime | None = None
    decline_end: datetime | None = None
    churn_at: datetime | None = None  # UTC midnight from which a churner does nothing
    candidates: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)

    @property
    def profile(self) -> arch.ArchetypeProfile:
        return arch.PROFILES[self.archetype]

    def condition(self, day: datetime) -> Condition:
        """Behaviour on the UTC day starting at ``day``; inactive before onboarding and from the churn day."""
        start = _midnight(self.onboarding_date)
        if day < start or (self.churn_at is not None and day >= self.churn_at):
            return INACTIVE
        noon = day + DAY / 2
        tenure = (noon - start) / DAY
        p = 0.0
        if self.decline_start is not None and noon > self.decline_start:
            p = min(1.0, (noon - self.decline_start) / (self.decline_end - self.decline_start))
        traj, prof = self.profile.trajectory, self.profile
        activity = 1.0 + (traj.activity - 1.0) * p
        if self.archetype is Archetype.new:
            activity *= min(1.0, arch.NEW_RAMP_FLOOR + (1 - arch.NEW_RAMP_FLOOR) * tenure / arch.NEW_RAMP_DAYS)
        gap = arch.NEW_QUALITY_GAP * math.exp(-tenure / arch.NEW_QUALITY_GAP_DAYS)

        def prob(x: float) -> float:
            return min(0.95, max(0.0, x))

        return Condition(
            active=True,
            activity=activity,
            quality=self.quality + traj.rating * p - gap,
            engagement=min(0.99, max(0.05, self.engagement + traj.engagement * p)),
            reschedule_p=prob(self.reschedule_p + traj.reschedule * p),
            no_show_p=prob(self.no_show_p + traj.no_show * p),
            late_p=prob(self.late_p + traj.late * p),
            late_mean_minutes=prof.late_mean_minutes * (1 + p),
            objectives_p=prob(self.objectives_p + traj.objectives * p),
            technical_p=prof.technical_p,
            logins_per_day=self.logins_per_day * (1 + (traj.logins - 1) * p),
            decline=p,
            tenure_days=tenure,
        )


@dataclass
class WorldStudent:
    index: int
    student_id: str
    name: str
    age: int
    grade_level: str
    subjects_interested: tuple[str, ...]


@dataclass
class World:
    seed: int
    epoch: datetime
    span_days: int
    tutors: list[WorldTutor]
    students: list[WorldStudent]
    # Pairings that began before the epoch: (tutor_id, student_id) -> sessions already held. Without them
    # every tenured tutor would open the backfill with an empty roster and a burst of "first" sessions.
    prior_sessions: dict[tuple[str, str], int]

    @cached_property
    def students_by_id(self) -> dict[str, WorldStudent]:
        return {s.student_id: s for s in self.students}

    @property
    def horizon(self) -> datetime:
        return self.epoch + timedelta(days=self.span_days)

    def volume_scale(self, sessions_per_day: int) -> float:
        """Real sessions per week for one unit of baseline_sessions_per_week, at full activity."""
        return sessions_per_day * 7 / sum(t.baseline_sessions_per_week for t in self.tutors)

    def tutor_rows(self, *, now: datetime | None = None) -> list[dict]:
        """Rows for the tutors table. created_at defaults to onboarding (business time), keeping rows stable."""
        return [{
            "tutor_id": t.tutor_id, "name": t.name, "email": t.email, "onboarding_date": t.onboarding_date,
            # Status is the evaluator's call (e.g. 14 days inactive -> churned), not the simulator's.
            "status": TutorStatus.active, "subjects": list(t.subjects), "education_level": t.education_level,
            "location": t.location, "baseline_sessions_per_week": t.baseline_sessions_per_week,
            "behavioral_archetype": t.archetype,
            "created_at": now or _midnight(t.onboarding_date), "updated_at": now or _midnight(t.onboarding_date),
        } for t in self.tutors]

    def student_rows(self, *, now: datetime | None = None) -> list[dict]:
        return [{
            "student_id": s.student_id, "name": s.name, "age": s.age, "grade_level": s.grade_level,
            "subjects_interested": list(s.subjects_interested),
            "created_at": now or self.epoch, "updated_at": now or self.epoch,
        } for s in self.students]


def _pick_subjects(rng: np.random.Generator, weights: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Boolean (rows x subjects) mask of k distinct subjects per row, weighted (Gumbel top-k, vectorised)."""
    with np.errstate(divide="ignore"):
        scores = np.log(weights) + rng.gumbel(size=weights.shape)
    order = np.argsort(-scores, axis=1)
    mask = np.zeros(weights.shape, dtype=bool)
    rows = np.arange(weights.shape[0])
    for j in range(int(k.max())):
        sel = k > j
        mask[rows[sel], order[sel, j]] = True
    return mask


def _build_students(rng: np.random.Generator, fake: Faker, n: int) -> tuple[list[WorldStudent], np.ndarray]:
    ages = rng.integers(8, 19, size=n)
    weights = np.where(ages[:, None] >= _SUBJECT_MIN_AGE[None, :], _SUBJECT_POPULARITY[None, :], 0.0)
    mask = _pick_subjects(rng, weights, rng.integers(1, 4, size=n))
    width = max(5, len(str(n)))
    students = [
        WorldStudent(
            index=i, student_id=f"student_{i + 1:0{width}d}", name=f"{fake.first_name()} {fake.last_name()}",
            age=int(ages[i]), grade_level=f"Grade {min(12, int(ages[i]) - 5)}",
            subjects_interested=tuple(SUBJECTS[j] for j in np.flatnonzero(mask[i])),
        )
        for i in range(n)
    ]
    return students, mask


def build_world(seed: int, n_tutors: int, epoch: datetime, span_days: int) -> World:
    """Tutors, students and latent behaviour for a simulation covering [epoch, epoch + span_days)."""
    if epoch.tzinfo is None:
        raise ValueError("epoch must be timezone-aware")
    epoch = epoch.astimezone(UTC)
    horizon = epoch + timedelta(days=span_days)
    rng = np.random.default_rng(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)

    kinds = arch.assign_archetypes(rng, n_tutors)
    z = rng.standard_normal((n_tutors, 7))
    u = rng.random((n_tutors, 6))
    baseline = np.clip(np.round(rng.gamma(6.0, 2.5, size=n_tutors), 1), 5.0, 30.0)
    education = rng.choice(len(EDUCATION_LEVELS), size=n_tutors, p=_EDUCATION_P)
    subject_mask = _pick_subjects(rng, np.tile(_SUBJECT_POPULARITY, (n_tutors, 1)), rng.integers(1, 4, size=n_tutors))

    def span(lo_hi: tuple[float, float], x: float) -> float:
        return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * x

    width = max(4, len(str(n_tutors)))
    tutors: list[WorldTutor] = []
    for i, kind in enumerate(kinds):
        prof = arch.PROFILES[kind]
        first, last = fake.first_name(), fake.last_name()
        location = f"{fake.city()}, {fake.state_abbr()}"
        decline_start = decline_end = churn_at = None
        if kind is Archetype.at_risk:
            decline_start = horizon + timedelta(days=span(arch.AT_RISK_DECLINE_START, u[i, 0]))
            decline_end = decline_start + timedelta(days=span(arch.AT_RISK_DECLINE_LENGTH, u[i, 1]))
        elif prof.trajectory.churns:
            window = arch.CHURN_DAY_FUTURE if u[i, 2] < arch.CHURN_IN_FUTURE_SHARE else arch.CHURN_DAY_PAST
            churn_at = _midnight((horizon + timedelta(days=span(window, u[i, 0]))).date())
            decline_end = churn_at
            decline_start = churn_at - timedelta(days=span(arch.CHURNER_DECLINE_LENGTH, u[i, 1]))
        if kind is Archetype.new:
            onboarding = (horizon - timedelta(days=span(arch.NEW_TENURE_AT_HORIZON, u[i, 3]))).date()
        else:
            anchor = min(epoch, decline_start) if decline_start else epoch
            onboarding = (anchor - timedelta(days=span(arch.TENURED_ONBOARDING_DAYS_BEFORE_EPOCH, u[i, 3]))).date()
        tutor_id = f"tutor_{i + 1:0{width}d}"
        tutors.append(WorldTutor(
            index=i, tutor_id=tutor_id, archetype=kind, name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}.{i + 1}@tutors.example.com".replace(" ", ""),
            onboarding_date=onboarding, subjects=tuple(SUBJECTS[j] for j in np.flatnonzero(subject_mask[i])),
            education_level=EDUCATION_LEVELS[education[i]], location=location,
            baseline_sessions_per_week=float(baseline[i]),
            quality=float(np.clip(prof.rating_mean + prof.rating_spread * z[i, 0], 2.6, 4.95)),
            engagement=float(np.clip(prof.engagement_mean + 0.05 * z[i, 1], 0.3, 0.98)),
            # Log-normal spread keeps rates positive and skews a few tutors well above their archetype.
            reschedule_p=prof.reschedule_p * math.exp(0.3 * z[i, 2]),
            no_show_p=prof.no_show_p * math.exp(0.3 * z[i, 3]),
            late_p=prof.late_p * math.exp(0.3 * z[i, 4]),
            objectives_p=float(np.clip(prof.objectives_p + 0.04 * z[i, 5], 0.3, 0.98)),
            logins_per_day=prof.logins_per_day * math.exp(0.2 * z[i, 6]),
            decline_start=decline_start, decline_end=decline_end, churn_at=churn_at,
        ))

    students, student_mask = _build_students(rng, fake, n_tutors * STUDENTS_PER_TUTOR)
    overlap = student_mask.astype(np.int32) @ subject_mask.T.astype(np.int32)  # students x tutors
    prior: dict[tuple[str, str], int] = {}
    roster_u = rng.random(n_tutors)
    for t in tutors:
        t.candidates = np.flatnonzero(overlap[:, t.index])
        tenure_at_epoch = (epoch - _midnight(t.onboarding_date)) / DAY
        # Roster grows with tenure; a tutor onboarded after the epoch starts with nobody.
        size = round(t.baseline_sessions_per_week * (1.5 + 1.5 * roster_u[t.index]) * min(1.0, max(0.0, tenure_at_epoch) / 60))
        # A per-tutor stream, so one tutor's roster size never shifts another's draws.
        trng = np.random.default_rng([seed, t.index, 0x9E57])
        picked = trng.choice(t.candidates, size=min(size, len(t.candidates)), replace=False) if size else []
        counts = trng.integers(1, 25, size=len(picked))
        for s, c in zip(picked, counts, strict=True):
            prior[(t.tutor_id, students[int(s)].student_id)] = int(c)
    return World(seed=seed, epoch=epoch, span_days=span_days, tutors=tutors, students=students, prior_sessions=prior)
