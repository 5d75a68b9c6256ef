"""Turn a world and a business-time interval into sessions, feedback and tutor events.

An interval is cut at UTC midnights into pieces; each tutor's output for a piece comes from generators
seeded with (world seed, tutor index, piece start), so generating the same interval twice gives the same
rows and the same ids (a retried live tick is a no-op at ingestion). A session belongs to the interval its
``scheduled_start`` falls in; its feedback and reschedule request ride in the same batch even though their
timestamps lie after (or before) the interval, so a batch never refers to a session it does not contain.

Sessions start on 5-minute slots, so a 15-second tick and a whole day draw from the same distribution.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from domain.events.schemas import TutorEventIn
from domain.feedback.models import DimensionRatings, FeedbackIn
from domain.sessions.models import SessionIn
from domain.tutors.models import Archetype
from synth import archetypes as arch
from synth import text
from synth.world import DAY, Condition, World, WorldTutor

SLOT = timedelta(minutes=arch.SLOT_MINUTES)
_SLOTS_PER_DAY = DAY // SLOT
_LOGIN_CDF = np.concatenate([[0.0], np.cumsum(arch.LOGIN_HOUR_PROFILE)])
_REASON_CDF = np.cumsum(arch.TUTOR_RESCHEDULE_REASON_P)
_RECOMMEND_P = np.array([0.0, 0.02, 0.08, 0.40, 0.90, 0.97])  # by overall rating
_U = 19  # uniforms drawn per session; fixed so the stream never depends on state


@dataclass
class Batch:
    sessions: list[SessionIn] = field(default_factory=list)
    feedback: list[FeedbackIn] = field(default_factory=list)
    events: list[TutorEventIn] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.sessions += other.sessions
        self.feedback += other.feedback
        self.events += other.events


class _Rosters:
    """Each tutor's students, kept sorted so a pick never depends on how the history was split into calls."""

    def __init__(self, world: World, pair_counts: dict[tuple[str, str], int]):
        self.counts = pair_counts
        self.prior = world.prior_sessions
        by_tutor: dict[str, set[str]] = {}
        for tutor_id, student_id in (*self.prior, *pair_counts):
            by_tutor.setdefault(tutor_id, set()).add(student_id)
        self.rosters = {t: sorted(s) for t, s in by_tutor.items()}

    def roster(self, tutor_id: str) -> list[str]:
        return self.rosters.setdefault(tutor_id, [])

    def knows(self, tutor_id: str, student_id: str) -> bool:
        key = (tutor_id, student_id)
        return key in self.counts or key in self.prior

    def next_number(self, tutor_id: str, student_id: str) -> int:
        key = (tutor_id, student_id)
        if not self.knows(tutor_id, student_id):
            bisect.insort(self.roster(tutor_id), student_id)
        n = self.counts.get(key, self.prior.get(key, 0)) + 1
        self.counts[key] = n
        return n


def _pieces(start: datetime, end: datetime):
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    while day < end:
        yield day, max(start, day), min(end, day + DAY)
        day += DAY


def _login_cdf(seconds: float) -> float:
    h = min(23, int(seconds // 3600))
    return _LOGIN_CDF[h] + arch.LOGIN_HOUR_PROFILE[h] * (seconds - 3600 * h) / 3600


def _login_events(world: World, t: WorldTutor, c: Condition, day: datetime, a: datetime, b: datetime) -> list[TutorEventIn]:
    sa, sb = (a - day).total_seconds(), (b - day).total_seconds()
    lo, hi = _login_cdf(sa), _login_cdf(sb)
    rng = np.random.default_rng([world.seed, t.index, int(a.timestamp()), 1])
    n = int(rng.poisson(c.logins_per_day * (hi - lo)))
    if not n:
        return []
    q = np.sort(lo + (hi - lo) * rng.random(n))
    h = np.clip(np.searchsorted(_LOGIN_CDF, q, side="right") - 1, 0, 23)
    secs = np.clip(3600 * h + (q - _LOGIN_CDF[h]) / arch.LOGIN_HOUR_PROFILE[h] * 3600, sa, np.nextafter(sb, sa))
    # Prep time before teaching shrinks as a tutor disengages (PRD §1.3 "session prep time").
    prep = np.maximum(0, np.round(rng.normal(15 * (1 - 0.6 * c.decline), 5, size=n))).astype(int).tolist()
    out = []
    for k, s in enumerate(secs.tolist()):
        ts = max(a, day + timedelta(seconds=s))
        out.append(TutorEventIn(
            event_id=f"e_login_{t.tutor_id}_{ts:%Y%m%dT%H%M%S%f}_{k}", tutor_id=t.tutor_id, event_type="login",
            event_timestamp=ts, metadata={"session_prep_minutes": prep[k]},
        ))
    return out


def _tutor_piece(world: World, t: WorldTutor, c: Condition, day: datetime, a: datetime, n: int,
                 k0: int, slot_p: np.ndarray, rosters: _Rosters, out: Batch) -> None:
    rng = np.random.default_rng([world.seed, t.index, int(a.timestamp())])
    slots = np.sort(k0 + rng.choice(len(slot_p), size=n, p=slot_p))
    duration = rng.choice(arch.SESSION_DURATIONS, size=n, p=arch.SESSION_DURATION_P)
    u = rng.random((n, _U))
    z = rng.standard_normal((n, 7))
    late_draw = rng.exponential(size=n)
    picks = rng.integers(0, 1 << 30, size=(n, 2))

    # Pairing is sequential: a student met in this piece is on the roster for the next session.
    tid = t.tutor_id
    p_new = arch.NEW_TUTOR_NEW_PAIRING_P if t.archetype is Archetype.new else arch.NEW_PAIRING_P
    pool = t.candidates if len(t.candidates) else np.arange(len(world.students))
    students, numbers = [], []
    for j in range(n):
        roster = rosters.roster(tid)
        sid = None
        if not roster or u[j, 0] < p_new:
            for col in (1, 2, 3):
                cand = world.students[int(pool[int(u[j, col] * len(pool))])].student_id
                if not rosters.knows(tid, cand) or not roster:
                    sid = cand
                    break
        if sid is None:
            sid = roster[int(u[j, 4] * len(roster))]
        students.append(sid)
        numbers.append(rosters.next_number(tid, sid))
    first = np.array(numbers) == 1

    minute = slots * arch.SLOT_MINUTES
    morning = (minute >= 60 * arch.MORNING_HOURS.start) & (minute < 60 * arch.MORNING_HOURS.stop)
    ns_factor = np.where(morning, arch.MORNING_NO_SHOW_FACTOR, 1.0) * (arch.MONDAY_NO_SHOW_FACTOR if day.weekday() == 0 else 1.0)
    no_show = u[:, 7] < c.no_show_p * ns_factor
    resched = u[:, 5] < c.reschedule_p
    by_tutor = resched & (u[:, 6] < arch.TUTOR_INITIATED_RESCHEDULE_SHARE)
    late = np.where((u[:, 8] < c.late_p) & ~no_show, np.clip(np.ceil(late_draw * c.late_mean_minutes), 1, 45), 0).astype(int)
    tech = (u[:, 9] < c.technical_p) & ~no_show
    engagement = np.clip(c.engagement + 0.08 * z[:, 1] - 0.10 * tech, 0.0, 1.0)
    first_gap = arch.FIRST_SESSION_PENALTY + arch.FIRST_SESSION_TENURE_PENALTY * math.exp(-c.tenure_days / arch.FIRST_SESSION_TENURE_DAYS)
    rating = (c.quality + 0.45 * z[:, 0] - first_gap * first - 0.5 * (late > 10) - 0.15 * ((late > 0) & (late <= 10))
              - 0.4 * tech + 0.8 * (engagement - c.engagement))
    rating = np.round(np.clip(rating, 1.0, 5.0), 1)
    objectives = u[:, 10] < np.clip(c.objectives_p + 0.12 * (rating - c.quality), 0.02, 0.99)
    overall = np.clip(np.floor(rating + 0.5), 1, 5).astype(int)
    has_feedback = ~no_show & (u[:, 11] < arch.FEEDBACK_P)
    has_text = has_feedback & (u[:, 12] < np.where(overall <= 2, arch.FREE_TEXT_P_LOW, arch.FREE_TEXT_P))
    dims = overall[:, None] + 0.55 * z[:, 2:7]
    dims[:, 2] -= 0.8 * (late > 10)  # patience: students read lateness as not caring
    dims[:, 3] = 0.5 * dims[:, 3] + 0.5 * (1 + 4 * engagement)  # engagement dimension tracks the session's
    dims = np.clip(np.floor(dims + 0.5), 1, 5).astype(int)
    recommend = u[:, 13] < _RECOMMEND_P[overall]
    short = u[:, 14] < arch.SHORT_NOTICE_P + (arch.SHORT_NOTICE_P_DECLINED - arch.SHORT_NOTICE_P) * c.decline
    lead = np.round(np.where(short, 1 + 22 * u[:, 15], 24 + 72 * u[:, 15]), 1)
    shift_min = 30 * np.ceil(4 + 140 * u[:, 17])  # the session was pushed 2-72 h later
    reasons = np.searchsorted(_REASON_CDF, u[:, 16] * _REASON_CDF[-1], side="right")
    delay = 5 + 85 * u[:, 18]

    cols = [x.tolist() for x in (minute, duration, no_show, resched, by_tutor, late, tech, engagement, rating,
                                 objectives, overall, has_feedback, has_text, recommend, lead, shift_min, reasons,
                                 delay, first, dims, picks)]
    per_slot: dict[int, int] = {}
    day_stamp = f"{day:%Y%m%d}"
    for j, (mi, dur, ns, rs, bt, lt, te, en, ra, ob, ov, fb, tx, rec, ld, sh, rn, dl, fi, dm, pk) in enumerate(zip(*cols)):
        start = day + timedelta(minutes=mi)
        k = per_slot[mi] = per_slot.get(mi, -1) + 1
        sid = f"s_{tid}_{day_stamp}T{mi // 60:02d}{mi % 60:02d}_{k}"
        student = students[j]
        # A pairing keeps one subject: the tutor's first that the student wants.
        wanted = world.students_by_id[student].subjects_interested
        subject = next((s for s in t.subjects if s in wanted), t.subjects[0])
        comment = None
        if tx:
            comment = text.comment(ov, pk[0], subject=subject, late=lt > 5, technical=te, first_session=fi)
        actual = None if ns else start + timedelta(minutes=lt)
        out.sessions.append(SessionIn(
            session_id=sid, tutor_id=tid, student_id=student, session_number=numbers[j], scheduled_start=start,
            actual_start=actual, duration_minutes=dur, subject=subject, tutor_initiated_reschedule=bt,
            no_show=ns, late_start_minutes=lt, engagement_score=None if ns else round(en, 2),
            student_rating=None if ns else ra, student_feedback_text=comment,
            learning_objectives_met=None if ns else ob, technical_issues=te,
        ))
        if rs:
            original = start - timedelta(minutes=sh)
            out.events.append(TutorEventIn(
                event_id=f"e_rs_{sid}", tutor_id=tid, event_type="reschedule_request",
                event_timestamp=original - timedelta(hours=ld),
                metadata={"session_id": sid, "initiated_by": "tutor" if bt else "student", "tutor_initiated": bt,
                          "lead_time_hours": ld, "reason": arch.TUTOR_RESCHEDULE_REASONS[rn] if bt else "student_request",
                          "original_start": original.isoformat(), "new_start": start.isoformat()},
            ))
        if fb:
            poor_first = fi and ov <= 3
            out.feedback.append(FeedbackIn(
                feedback_id=f"f_{sid}", session_id=sid, student_id=student, tutor_id=tid, overall_rating=ov,
                first_session=fi,
                ratings=DimensionRatings(subject_knowledge=dm[0], communication=dm[1], patience=dm[2],
                                         engagement=dm[3], helpfulness=dm[4]),
                would_recommend=rec if fi else None,
                improvement_areas=text.improvement_areas(pk[1], late=lt > 5, technical=te) if poor_first else [],
                free_text_feedback=comment, timestamp=actual + timedelta(minutes=dur + dl),
            ))


def simulate(world: World, start: datetime, end: datetime, *, sessions_per_day: int,
             pair_counts: dict[tuple[str, str], int]) -> Batch:
    """Everything that happens in the business-time interval [start, end).

    ``sessions_per_day`` is the population's volume on an average day of the week at full activity: each
    day's volume is shared among the tutors active that day in proportion to baseline x current activity, so
    a declining or departed tutor's students move to the others and the platform total holds.
    ``pair_counts`` maps (tutor_id, student_id) to the last session_number; it is read and updated in place.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    out = Batch()
    if start >= end:
        return out
    rosters = _Rosters(world, pair_counts)
    for day, a, b in _pieces(start, end):
        conds = [t.condition(day) for t in world.tutors]
        weights = np.array([t.baseline_sessions_per_week * c.activity for t, c in zip(world.tutors, conds, strict=True)])
        total = weights.sum()
        if total <= 0:
            continue
        k0, k1 = -(-(a - day) // SLOT), min(_SLOTS_PER_DAY, -(-(b - day) // SLOT))
        profile = arch.SLOT_PROFILE[day.weekday() >= 5][k0:k1]
        mass = profile.sum()
        day_volume = sessions_per_day * arch.WEEKDAY_FACTOR[day.weekday()]
        for t, c, w in zip(world.tutors, conds, weights.tolist(), strict=True):
            if not c.active:
                continue
            if mass > 0:
                n = int(np.random.default_rng([world.seed, t.index, int(a.timestamp()), 2]).poisson(day_volume * w / total * mass))
                if n:
                    _tutor_piece(world, t, c, day, a, n, k0, profile / mass, rosters, out)
            out.events += _login_events(world, t, c, day, a, b)
    return out
