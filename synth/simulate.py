"""Turn the agents' days and a business-time interval into sessions, feedback and tutor events.

An interval is cut at UTC midnights into pieces; each tutor's output for a piece comes from generators
seeded with (world seed, tutor slot, piece start), so generating the same interval twice gives the same
rows and the same ids (a retried live tick is a no-op at ingestion), and splitting at midnight changes
nothing. A session belongs to the interval its ``scheduled_start`` falls in; its feedback and reschedule
request ride in the same batch even though their timestamps lie after (or before) the interval.
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
from synth import text
from synth.agents import Agents
from synth.calendar import SLOT_MINUTES, SLOTS_PER_DAY, Calendar, calendar_for
from synth.events import tutor_events
from synth.world import ARCHETYPES, DAY, World

SLOT = timedelta(minutes=SLOT_MINUTES)
_RECOMMEND_P = np.array([0.0, 0.02, 0.08, 0.40, 0.90, 0.97])  # by overall rating
_U = 20  # uniforms drawn per session; fixed so the stream never depends on state
_NEW = ARCHETYPES.index("new")


@dataclass
class Batch:
    sessions: list[SessionIn] = field(default_factory=list)
    feedback: list[FeedbackIn] = field(default_factory=list)
    events: list[TutorEventIn] = field(default_factory=list)
    # Rows the ingestion of the above depends on (tutors hired during the simulation) and the ground truth.
    tutors: list[dict] = field(default_factory=list)
    truth_tutors: list[dict] = field(default_factory=list)
    truth_transitions: list[dict] = field(default_factory=list)
    # Live ticks only: tutors opening or answering their in-app messages (synth/responses.py).
    responses: list = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.sessions += other.sessions
        self.feedback += other.feedback
        self.events += other.events


class _Rosters:
    """Each tutor's students, kept sorted so a pick never depends on how the history was split into calls."""

    def __init__(self, world: World, pair_counts: dict[tuple[str, str], int]):
        self.counts, self.prior = pair_counts, world.prior_sessions
        by_tutor: dict[str, set[str]] = {}
        for tutor_id, student_id in (*self.prior, *pair_counts):
            by_tutor.setdefault(tutor_id, set()).add(student_id)
        self.rosters = {t: sorted(s) for t, s in by_tutor.items()}

    def roster(self, tutor_id: str) -> list[str]:
        return self.rosters.setdefault(tutor_id, [])

    def knows(self, tutor_id: str, student_id: str) -> bool:
        return (tutor_id, student_id) in self.counts or (tutor_id, student_id) in self.prior

    def next_number(self, tutor_id: str, student_id: str) -> int:
        key = (tutor_id, student_id)
        if not self.knows(tutor_id, student_id):
            bisect.insort(self.roster(tutor_id), student_id)
        n = self.counts.get(key, self.prior.get(key, 0)) + 1
        self.counts[key] = n
        return n


@dataclass(frozen=True)
class _Tutor:
    """One tutor's behaviour on one day: the per-session probabilities the day's sessions are drawn from."""

    slot: int
    tutor_id: str
    quality: float
    engagement: float
    reschedule_p: float
    no_show_p: float
    late_p: float
    late_mean: float
    objectives_p: float
    technical_p: float
    disengagement: float
    tenure: float


def _day_tutors(agents: Agents, d: int) -> tuple[list[_Tutor], np.ndarray, dict]:
    """Active tutors of day ``d``, their volume weights and event rates."""
    w, sc, v = agents.world, agents.sc, agents.view(d)
    ob, ref, gap = sc.observables, sc.latent.reference, sc.latent.reference - v.engagement
    quality = w.quality + ob.rating_slope * (v.engagement - ref) - ob.new_quality_gap * np.exp(-v.tenure / ob.new_quality_gap_days)
    cols = (quality, (w.session_engagement - 0.5 * gap).clip(0.05, 0.99),
            (w.reschedule_p * np.exp(ob.reschedule_slope * gap)).clip(0, 0.6),
            (w.no_show_p * np.exp(ob.no_show_slope * gap)).clip(0, 0.5),
            (w.late_p * np.exp(ob.late_slope * gap)).clip(0, 0.9), w.late_mean * (1 + v.disengagement),
            (w.objectives_p - ob.objectives_slope * gap).clip(0.05, 0.99), w.technical_p, v.disengagement, v.tenure)
    idx = np.flatnonzero(v.alive)
    rows = np.stack([c[idx] for c in cols], axis=1).tolist()
    tutors = [_Tutor(int(i), w.tutor_id(int(i)), *r) for i, r in zip(idx.tolist(), rows, strict=True)]
    bh = sc.behaviour
    rates = {"login": v.logins[idx], "msg": bh.messages_per_day * np.maximum(v.activity[idx], 0.2),
             "avail": np.full(len(idx), bh.availability_changes_per_week / 7),
             "train": bh.trainings_per_month / 30 * (v.engagement[idx] / ref) * np.where(v.effect[idx], 3.0, 1.0)}
    response = bh.response_minutes_median * np.exp(bh.response_slope * gap[idx])
    reduction = 0.4 + (bh.availability_reduction_p_disengaged - 0.4) * v.disengagement[idx]
    extra = {"rates": rates, "response": response, "reduction": reduction}
    return tutors, w.baseline[idx] * v.activity[idx], extra


def _tutor_piece(agents: Agents, cal: Calendar, t: _Tutor, day: datetime, a: datetime, n: int, k0: int,
                 slot_p: np.ndarray, rosters: _Rosters, out: Batch) -> None:
    world, sc = agents.world, agents.sc
    ob, rs = sc.observables, sc.reschedules
    rng = np.random.default_rng([world.seed, t.slot, int(a.timestamp())])
    slots = np.sort(k0 + rng.choice(len(slot_p), size=n, p=slot_p))
    durations = np.array(list(ob.durations))
    dur_p = np.array(list(ob.durations.values()))
    duration = rng.choice(durations, size=n, p=dur_p / dur_p.sum())
    u = rng.random((n, _U))
    z = rng.standard_normal((n, 7))
    late_draw = rng.exponential(size=n)
    picks = rng.integers(0, 1 << 30, size=(n, 2))

    # Pairing is sequential: a student met in this piece is on the roster for the next session.
    tid = t.tutor_id
    p_new = ob.new_tutor_new_pairing_p if world.archetype[t.slot] == _NEW and t.tenure < 60 else ob.new_pairing_p
    pool = world.candidates(t.slot)
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

    minute = slots * SLOT_MINUTES
    morning = (minute >= cal.morning[0]) & (minute < cal.morning[1])
    ns_factor = np.where(morning, cal.morning_factor, 1.0) * (cal.monday_factor if day.weekday() == 0 else 1.0)
    no_show = u[:, 7] < t.no_show_p * ns_factor
    resched = u[:, 5] < t.reschedule_p
    by_tutor = resched & (u[:, 6] < rs.tutor_initiated_share)
    late = np.where((u[:, 8] < t.late_p) & ~no_show, np.clip(np.ceil(late_draw * t.late_mean), 1, 45), 0).astype(int)
    tech = (u[:, 9] < t.technical_p) & ~no_show
    engagement = np.clip(t.engagement + 0.08 * z[:, 1] - 0.10 * tech, 0.0, 1.0)
    first_gap = ob.first_session_penalty + ob.first_session_tenure_penalty * math.exp(-t.tenure / ob.first_session_tenure_days)
    # A first session either clicks or it does not: a mismatch (more likely for a new tutor) costs whole stars,
    # which is how the PRD's 24% of first sessions come to be rated below 3 while most go fine.
    mismatch_p = ob.first_session_mismatch_p + ob.first_session_mismatch_tenure_p * math.exp(-t.tenure / ob.first_session_tenure_days)
    mismatch = first & (u[:, 19] < mismatch_p)
    rating = (t.quality + ob.rating_noise_sd * z[:, 0] - first_gap * first - ob.first_session_mismatch_stars * mismatch
              - 0.5 * (late > 10)
              - 0.15 * ((late > 0) & (late <= 10)) - 0.4 * tech + 0.8 * (engagement - t.engagement))
    rating = np.round(np.clip(rating, 1.0, 5.0), 1)
    objectives = u[:, 10] < np.clip(t.objectives_p + 0.12 * (rating - t.quality), 0.02, 0.99)
    overall = np.clip(np.floor(rating + 0.5), 1, 5).astype(int)
    has_feedback = ~no_show & (u[:, 11] < ob.feedback_p)
    has_text = has_feedback & (u[:, 12] < np.where(overall <= 2, ob.free_text_p_low, ob.free_text_p))
    dims = overall[:, None] + 0.55 * z[:, 2:7]
    dims[:, 2] -= 0.8 * (late > 10)  # patience: students read lateness as not caring
    dims[:, 3] = 0.5 * dims[:, 3] + 0.5 * (1 + 4 * engagement)  # engagement dimension tracks the session's
    dims = np.clip(np.floor(dims + 0.5), 1, 5).astype(int)
    recommend = u[:, 13] < _RECOMMEND_P[overall]
    short = u[:, 14] < rs.short_notice_p + (rs.short_notice_p_disengaged - rs.short_notice_p) * t.disengagement
    lead = np.round(np.where(short, 1 + 22 * u[:, 15], 24 + 72 * u[:, 15]), 1)
    shift_min = 30 * np.ceil(4 + 140 * u[:, 17])  # the session was pushed 2-72 h later
    reason_names = list(rs.reasons)
    reason_cdf = np.cumsum(list(rs.reasons.values()))
    reasons = np.searchsorted(reason_cdf, u[:, 16] * reason_cdf[-1], side="right").clip(0, len(reason_names) - 1)
    delay = 5 + 85 * u[:, 18]

    cols = [x.tolist() for x in (minute, duration, no_show, resched, by_tutor, late, tech, engagement, rating,
                                 objectives, overall, has_feedback, has_text, recommend, lead, shift_min, reasons,
                                 delay, first, dims, picks)]
    per_slot: dict[int, int] = {}
    day_stamp = f"{day:%Y%m%d}"
    subjects = world.identity(t.slot).subjects
    for j, (mi, dur, ns, rsc, bt, lt, te, en, ra, ob_met, ov, fb, tx, rec, ld, sh, rn, dl, fi, dm, pk) in enumerate(zip(*cols)):
        start = day + timedelta(minutes=mi)
        k = per_slot[mi] = per_slot.get(mi, -1) + 1
        sid = f"s_{tid}_{day_stamp}T{mi // 60:02d}{mi % 60:02d}_{k}"
        student = students[j]
        # A pairing keeps one subject: the tutor's first that the student wants.
        wanted = world.students[int(student.rsplit("_", 1)[1]) - 1].subjects_interested
        subject = next((s for s in subjects if s in wanted), subjects[0])
        comment = text.comment(ov, pk[0], subject=subject, late=lt > 5, technical=te, first_session=fi) if tx else None
        actual = None if ns else start + timedelta(minutes=lt)
        out.sessions.append(SessionIn(
            session_id=sid, tutor_id=tid, student_id=student, session_number=numbers[j], scheduled_start=start,
            actual_start=actual, duration_minutes=dur, subject=subject, tutor_initiated_reschedule=bt,
            no_show=ns, late_start_minutes=lt, engagement_score=None if ns else round(en, 2),
            student_rating=None if ns else ra, student_feedback_text=comment,
            learning_objectives_met=None if ns else ob_met, technical_issues=te,
        ))
        if rsc:
            original = start - timedelta(minutes=sh)
            out.events.append(TutorEventIn(
                event_id=f"e_rs_{sid}", tutor_id=tid, event_type="reschedule_request",
                event_timestamp=original - timedelta(hours=ld),
                metadata={"session_id": sid, "initiated_by": "tutor" if bt else "student", "tutor_initiated": bt,
                          "lead_time_hours": ld, "reason": reason_names[rn] if bt else "student_request",
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


def _pieces(start: datetime, end: datetime):
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    while day < end:
        yield day, max(start, day), min(end, day + DAY)
        day += DAY


def simulate(agents: Agents, start: datetime, end: datetime, *, sessions_per_day: int,
             pair_counts: dict[tuple[str, str], int]) -> Batch:
    """Sessions, feedback and events in the business-time interval [start, end).

    ``sessions_per_day`` is the platform's volume on an average day of the week: each day's volume is shared
    among the tutors active that day in proportion to baseline x current activity, so a declining or departed
    tutor's students move to the others and the platform total holds.
    ``pair_counts`` maps (tutor_id, student_id) to the last session_number; it is read and updated in place.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    out = Batch()
    world, cal = agents.world, calendar_for(agents.world.scenario)
    if start >= end:
        return out
    if start.date() < world.epoch_day:
        raise ValueError(f"the world starts on {world.epoch_day}; cannot simulate {start}")
    rosters = _Rosters(world, pair_counts)
    for day, a, b in _pieces(start, end):
        tutors, weights, extra = _day_tutors(agents, (day.date() - world.epoch_day).days)
        total = weights.sum()
        k0, k1 = -(-(a - day) // SLOT), min(SLOTS_PER_DAY, -(-(b - day) // SLOT))
        profile = cal.slot_profile[day.weekday() >= 5][k0:k1]
        mass = profile.sum()
        day_volume = sessions_per_day * cal.weekday_factor[day.weekday()]
        rates = {k: v.tolist() for k, v in extra["rates"].items()}
        for j, (t, w) in enumerate(zip(tutors, weights.tolist(), strict=True)):
            if mass > 0 and total > 0:
                lam = day_volume * w / total * mass
                n = int(np.random.default_rng([world.seed, t.slot, int(a.timestamp()), 2]).poisson(lam))
                if n:
                    _tutor_piece(agents, cal, t, day, a, n, k0, profile / mass, rosters, out)
            out.events += tutor_events(cal, world.seed, t.slot, t.tutor_id, day, a, b,
                                       rates={k: r[j] for k, r in rates.items()}, disengagement=t.disengagement,
                                       response_median=float(extra["response"][j]),
                                       reduction_p=float(extra["reduction"][j]))
    return out
