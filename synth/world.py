"""The simulated population: who each tutor is (fixed), the students, and who already taught whom.

What a tutor *does* changes day by day and lives in synth/agents.py; this module holds what never changes:
identity, subjects, and the tutor's own base rates (their behaviour at the reference engagement).

Volume. The PRD asks for ~3,000 sessions/day across ~250 tutors *and* a baseline of 15 sessions/week per
tutor (mean; range 5-30). Those cannot both hold (250 x 15 / 7 ~ 535/day). We keep the PRD's baseline on the
tutor row as each tutor's *relative* activity weight: each day's volume is shared among the active tutors in
proportion to baseline x current activity, so a tutor's real weekly volume is ~5.6x the baseline at the
defaults. Anything comparing activity with the baseline must use that scale or the tutor's own history.

Ids. Capacity for ``capacity_factor x n_tutors`` tutors is reserved up front: the first ``n_tutors`` exist at
the epoch, hires take the next index (tutor_0251, ...). Every per-tutor draw comes from a stream seeded by
(seed, index), so a hire's attributes do not depend on when they were hired or on anyone else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from faker import Faker

from domain.tutors.models import Archetype, TutorStatus
from synth.scenario import LoadedScenario

SUBJECTS = ("Mathematics", "Physics", "Chemistry", "Biology", "English", "History", "Spanish",
            "Computer Science", "SAT Prep", "Economics")
_SUBJECT_POPULARITY = np.array([3.0, 1.2, 1.1, 1.1, 2.0, 0.8, 1.0, 1.2, 1.5, 0.6])
_SUBJECT_MIN_AGE = np.array([8, 13, 13, 11, 8, 10, 8, 11, 15, 14])
EDUCATION_LEVELS = ("Bachelor's", "Master's", "PhD", "Teaching Credential", "Some College")
_EDUCATION_P = np.array([0.45, 0.30, 0.08, 0.10, 0.07])
ARCHETYPES = tuple(Archetype)
STATES = ("thriving", "steady", "declining", "recovering")
DAY = timedelta(days=1)


def midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


@dataclass
class WorldStudent:
    index: int
    student_id: str
    name: str
    age: int
    grade_level: str
    subjects_interested: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    tutor_id: str
    name: str
    email: str
    subjects: tuple[str, ...]
    education_level: str
    location: str


@dataclass
class World:
    """Per-tutor arrays have length ``capacity``; index i is tutor_id(i) whether or not they exist yet."""

    seed: int
    scenario: LoadedScenario
    epoch: datetime
    n_tutors: int
    capacity: int
    archetype: np.ndarray  # index into ARCHETYPES; hires are New
    baseline: np.ndarray
    tenure_at_epoch: np.ndarray  # days, for the initial tutors (hires: set by the agents when hired)
    quality: np.ndarray
    session_engagement: np.ndarray
    reschedule_p: np.ndarray
    no_show_p: np.ndarray
    late_p: np.ndarray
    late_mean: np.ndarray
    objectives_p: np.ndarray
    technical_p: np.ndarray
    logins_per_day: np.ndarray
    target_offset: np.ndarray  # a tutor's own engagement target sits this far from their state's
    initial_state: np.ndarray  # index into STATES
    subject_mask: np.ndarray  # capacity x subjects
    education: np.ndarray
    students: list[WorldStudent]
    student_mask: np.ndarray
    # Pairings that began before the epoch: (tutor_id, student_id) -> sessions already held. Without them
    # every tenured tutor would open the simulation with an empty roster and a burst of "first" sessions.
    prior_sessions: dict[tuple[str, str], int]
    _identities: dict[int, Identity] = field(default_factory=dict, repr=False)
    _candidates: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def epoch_day(self) -> date:
        return self.epoch.date()

    def tutor_id(self, i: int) -> str:
        return f"tutor_{i + 1:0{max(4, len(str(self.capacity)))}d}"

    def identity(self, i: int) -> Identity:
        if i not in self._identities:
            fake = Faker("en_US")
            fake.seed_instance(self.seed * 1_000_003 + i)  # per tutor: a hire's name does not shift others'
            first, last = fake.first_name(), fake.last_name()
            self._identities[i] = Identity(
                tutor_id=self.tutor_id(i), name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}.{i + 1}@tutors.example.com".replace(" ", ""),
                subjects=tuple(SUBJECTS[j] for j in np.flatnonzero(self.subject_mask[i])),
                education_level=EDUCATION_LEVELS[int(self.education[i])],
                location=f"{fake.city()}, {fake.state_abbr()}",
            )
        return self._identities[i]

    def candidates(self, i: int) -> np.ndarray:
        """Students who want at least one of the tutor's subjects."""
        if i not in self._candidates:
            found = np.flatnonzero(self.student_mask[:, self.subject_mask[i]].any(axis=1))
            self._candidates[i] = found if len(found) else np.arange(len(self.students))
        return self._candidates[i]

    def tutor_row(self, i: int, onboarding: date, *, now: datetime | None = None) -> dict:
        """A row for the tutors table. Status is the evaluator's call (e.g. 14 days inactive), not ours."""
        ident = self.identity(i)
        stamp = now or midnight(onboarding)
        return {
            "tutor_id": ident.tutor_id, "name": ident.name, "email": ident.email, "onboarding_date": onboarding,
            "status": TutorStatus.active, "subjects": list(ident.subjects), "education_level": ident.education_level,
            "location": ident.location, "baseline_sessions_per_week": float(self.baseline[i]),
            "behavioral_archetype": ARCHETYPES[int(self.archetype[i])], "created_at": stamp, "updated_at": stamp,
        }

    def student_rows(self, *, now: datetime | None = None) -> list[dict]:
        return [{
            "student_id": s.student_id, "name": s.name, "age": s.age, "grade_level": s.grade_level,
            "subjects_interested": list(s.subjects_interested),
            "created_at": now or self.epoch, "updated_at": now or self.epoch,
        } for s in self.students]


def assign_archetypes(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    """Exact shares by largest remainder, then shuffled: the population mix never drifts with the seed."""
    kinds = [ARCHETYPES.index(Archetype(k)) for k in shares]
    quotas = np.array(list(shares.values())) * n
    counts = np.floor(quotas).astype(int)
    for i in np.argsort(-(quotas - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    pool = np.repeat(kinds, counts)
    return pool[rng.permutation(n)]


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


def _build_students(seed: int, n: int) -> tuple[list[WorldStudent], np.ndarray]:
    rng = np.random.default_rng([seed, 0x57D])
    fake = Faker("en_US")
    fake.seed_instance(seed)
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


def build_world(seed: int, n_tutors: int, epoch: datetime, scenario: LoadedScenario) -> World:
    """The fixed side of a simulation starting at ``epoch``: ``n_tutors`` now, room for hires later."""
    if epoch.tzinfo is None:
        raise ValueError("epoch must be timezone-aware")
    sc = scenario.scenario
    cap = n_tutors * sc.population.capacity_factor
    rng = np.random.default_rng([seed, 0x7070])
    kinds = np.full(cap, ARCHETYPES.index(Archetype.new))
    kinds[:n_tutors] = assign_archetypes(rng, {k: a.share for k, a in sc.archetypes.items()}, n_tutors)
    z = rng.standard_normal((cap, 9))
    u = rng.random((cap, 2))
    pop = sc.population
    base = pop.baseline_sessions_per_week
    baseline = np.clip(np.round(base.mean + base.sd * z[:, 0], 1), *pop.baseline_range)
    tenure = np.zeros(cap)
    arr = {k: np.zeros(cap) for k in ("quality", "eng", "res", "ns", "late", "late_mean", "obj", "tech", "login")}
    initial = np.zeros(cap, dtype=np.int8)
    for k, name in enumerate(ARCHETYPES):
        sel = kinds == k
        if not sel.any() or name.value not in sc.archetypes:
            continue
        a = sc.archetypes[name.value]
        arr["quality"][sel] = np.clip(a.quality.mean + a.quality.sd * z[sel, 1], 2.6, 4.95)
        arr["eng"][sel] = np.clip(a.session_engagement.mean + a.session_engagement.sd * z[sel, 2], 0.3, 0.98)
        for key, dist, col in (("res", a.reschedule_p, 3), ("ns", a.no_show_p, 4), ("late", a.late_p, 5),
                               ("login", a.logins_per_day, 6)):
            arr[key][sel] = dist.median * np.exp(dist.log_sd * z[sel, col])
        arr["late_mean"][sel] = a.late_mean_minutes
        arr["obj"][sel] = np.clip(a.objectives_p.mean + a.objectives_p.sd * z[sel, 7], 0.3, 0.98)
        arr["tech"][sel] = a.technical_p
        states = list(a.initial_state)
        w = np.array([a.initial_state[s] for s in states])
        initial[sel] = [STATES.index(states[j]) for j in np.searchsorted(np.cumsum(w / w.sum()), u[sel, 0], side="right").clip(0, len(states) - 1)]
        lo, hi = pop.new_tenure_days_at_epoch if name is Archetype.new else pop.tenured_onboarding_days_before_epoch
        tenure[sel] = np.floor(lo + (hi - lo) * u[sel, 1])
    subject_mask = _pick_subjects(rng, np.tile(_SUBJECT_POPULARITY, (cap, 1)), rng.integers(1, 4, size=cap))
    education = rng.choice(len(EDUCATION_LEVELS), size=cap, p=_EDUCATION_P)
    students, student_mask = _build_students(seed, n_tutors * pop.students_per_tutor)
    world = World(
        seed=seed, scenario=scenario, epoch=epoch.astimezone(UTC), n_tutors=n_tutors, capacity=cap,
        archetype=kinds, baseline=baseline, tenure_at_epoch=tenure, quality=arr["quality"],
        session_engagement=arr["eng"], reschedule_p=arr["res"], no_show_p=arr["ns"], late_p=arr["late"],
        late_mean=arr["late_mean"], objectives_p=arr["obj"], technical_p=arr["tech"], logins_per_day=arr["login"],
        target_offset=sc.latent.tutor_offset_sd * z[:, 8], initial_state=initial, subject_mask=subject_mask,
        education=education, students=students, student_mask=student_mask, prior_sessions={},
    )
    roster_u = rng.random(n_tutors)
    for i in range(n_tutors):
        # Roster grows with tenure; a tutor onboarded on the epoch day starts with nobody.
        size = round(baseline[i] * (1.5 + 1.5 * roster_u[i]) * min(1.0, tenure[i] / 60))
        trng = np.random.default_rng([seed, i, 0x9E57])
        cands = world.candidates(i)
        picked = trng.choice(cands, size=min(size, len(cands)), replace=False) if size else []
        for s, c in zip(picked, trng.integers(1, 25, size=len(picked)), strict=True):
            world.prior_sessions[(world.tutor_id(i), students[int(s)].student_id)] = int(c)
    return world
