"""The synthetic engine: determinism, the PRD's population shape and signals, and idempotent ingestion."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

import core.db
import domain.registry  # noqa: F401  (registers every table)
from core.db import session_scope
from domain.events.models import TutorEvent
from domain.events.service import ingest_events
from domain.feedback.models import StudentFeedback
from domain.feedback.service import ingest_feedback
from domain.sessions.models import TutoringSession
from domain.sessions.service import ingest_sessions
from domain.students.models import Student
from domain.tutors.models import Archetype, Tutor
from synth import text
from synth.backfill import backfill
from synth.live import SynthWorldMissing, generate_tick
from synth.simulate import simulate
from synth.world import build_world

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPAN = 60
POSITIVE = ("great", "excellent", "amazing", "fantastic", "best", "love", "awesome", "perfect", "helpful!",
            "super", "can't wait", "clear explanations", "learned a lot")


@pytest.fixture(scope="module")
def world():
    return build_world(7, 250, END - timedelta(days=SPAN), SPAN)


@pytest.fixture(scope="module")
def fortnight(world):
    """The last 14 days at the PRD volume."""
    return simulate(world, END - timedelta(days=14), END, sessions_per_day=3000, pair_counts={})


@pytest.fixture(scope="module")
def whole_span(world):
    """All 60 days at a lower volume: the trajectories do not depend on volume, the runtime does."""
    return simulate(world, world.epoch, END, sessions_per_day=600, pair_counts={})


def _by_archetype(world, sessions):
    kind = {t.tutor_id: t.archetype for t in world.tutors}
    out = defaultdict(list)
    for s in sessions:
        out[kind[s.tutor_id]].append(s)
    return out


def test_same_seed_same_world_and_sessions_different_seed_differs():
    epoch = END - timedelta(days=10)
    a, b, c = build_world(3, 30, epoch, 10), build_world(3, 30, epoch, 10), build_world(4, 30, epoch, 10)
    assert a.tutor_rows() == b.tutor_rows() and a.student_rows() == b.student_rows()
    assert a.prior_sessions == b.prior_sessions
    run = [simulate(w, epoch + timedelta(days=2), epoch + timedelta(days=4), sessions_per_day=400, pair_counts={})
           for w in (a, b, c)]
    assert run[0].sessions and run[0].sessions == run[1].sessions
    assert run[0].feedback == run[1].feedback and run[0].events == run[1].events
    assert [s.model_dump() for s in run[0].sessions] != [s.model_dump() for s in run[2].sessions]


def test_same_interval_twice_is_identical_including_a_live_tick(world):
    start = END + timedelta(hours=17)
    for length in (timedelta(seconds=15), timedelta(minutes=30)):
        pairs = dict(world.prior_sessions)
        first = simulate(world, start, start + length, sessions_per_day=3000, pair_counts=dict(pairs))
        again = simulate(world, start, start + length, sessions_per_day=3000, pair_counts=dict(pairs))
        assert first == again
    assert first.sessions, "a half-hour in the evening peak should book sessions"


def test_splitting_at_midnight_does_not_change_the_output(world):
    d0 = END - timedelta(hours=12)  # midnight
    whole = simulate(world, d0, d0 + timedelta(days=2), sessions_per_day=800, pair_counts={})
    pairs: dict = {}
    halves = simulate(world, d0, d0 + timedelta(days=1), sessions_per_day=800, pair_counts=pairs)
    halves.extend(simulate(world, d0 + timedelta(days=1), d0 + timedelta(days=2), sessions_per_day=800, pair_counts=pairs))
    assert whole == halves


def test_archetype_shares_match_the_prd(world):
    shares = Counter(t.archetype for t in world.tutors)
    expected = {Archetype.high_performer: 0.30, Archetype.at_risk: 0.20, Archetype.new: 0.25,
                Archetype.steady: 0.20, Archetype.churner: 0.05}
    for kind, share in expected.items():
        assert abs(shares[kind] / 250 - share) <= 0.05, kind


def test_rows_fit_the_tables_and_new_tutors_are_new(world):
    assert set(world.tutor_rows()[0]) == set(Tutor.__table__.columns.keys())
    assert set(world.student_rows()[0]) == set(Student.__table__.columns.keys())
    baselines = [t.baseline_sessions_per_week for t in world.tutors]
    assert 5 <= min(baselines) and max(baselines) <= 30 and 12 <= np.mean(baselines) <= 18
    assert all(8 <= s.age <= 18 and s.subjects_interested for s in world.students)
    for t in world.tutors:
        tenure = (END.date() - t.onboarding_date).days
        assert (tenure < 30) if t.archetype is Archetype.new else (t.onboarding_date < world.epoch.date())


def test_volume_is_about_3000_a_day(fortnight):
    per_day = len(fortnight.sessions) / 14
    assert 2550 <= per_day <= 3450, per_day
    by_hour = Counter(s.scheduled_start.hour for s in fortnight.sessions)
    assert by_hour[18] > 3 * by_hour[9] > 0, "evening peak"
    weekday = Counter(s.scheduled_start.weekday() for s in fortnight.sessions)
    assert weekday[1] > weekday[5]


def test_sessions_and_feedback_are_consistent(fortnight):
    ids = [s.session_id for s in fortnight.sessions]
    assert len(ids) == len(set(ids)) and max(map(len, ids)) <= 64
    events = [e.event_id for e in fortnight.events]
    assert len(events) == len(set(events))
    sessions = {s.session_id: s for s in fortnight.sessions}
    completed = [s for s in fortnight.sessions if not s.no_show]
    for s in fortnight.sessions:
        assert s.scheduled_start.tzinfo is not None and s.scheduled_start.minute % 5 == 0
        if s.no_show:
            assert s.actual_start is None and s.student_rating is None and s.engagement_score is None
        else:
            assert s.actual_start == s.scheduled_start + timedelta(minutes=s.late_start_minutes)
            assert 1 <= s.student_rating <= 5 and 0 <= s.engagement_score <= 1
    assert 0.75 <= len(fortnight.feedback) / len(completed) <= 0.85
    for f in fortnight.feedback:
        s = sessions[f.session_id]
        assert not s.no_show and f.student_id == s.student_id and f.first_session == (s.session_number == 1)
        assert f.overall_rating == math.floor(s.student_rating + 0.5)
        minutes_after_end = (f.timestamp - s.actual_start).total_seconds() / 60 - s.duration_minutes
        assert 5 <= minutes_after_end <= 90
        assert (f.would_recommend is not None) == f.first_session
        assert set(f.improvement_areas) <= set(text.IMPROVEMENT_AREAS)
        if f.first_session and f.overall_rating <= 2:
            assert f.improvement_areas
    first_share = sum(s.session_number == 1 for s in fortnight.sessions) / len(fortnight.sessions)
    assert 0.10 <= first_share <= 0.15, first_share


def test_reschedules_are_tutor_initiated_with_a_request_event(fortnight):
    requests = {e.metadata["session_id"]: e for e in fortnight.events if e.event_type == "reschedule_request"}
    flagged = [s for s in fortnight.sessions if s.tutor_initiated_reschedule]
    assert len(flagged) > 500
    for s in flagged:
        e = requests[s.session_id]
        assert e.metadata["initiated_by"] == "tutor" and e.metadata["lead_time_hours"] > 0 and e.metadata["reason"]
        assert e.event_timestamp < s.scheduled_start
    share = sum(e.metadata["tutor_initiated"] for e in requests.values()) / len(requests)
    assert 0.96 <= share <= 0.995, share


def test_no_shows_cluster_on_monday_mornings(fortnight):
    sessions = fortnight.sessions
    overall = np.mean([s.no_show for s in sessions])
    monday_morning = [s.no_show for s in sessions if s.scheduled_start.weekday() == 0 and 5 <= s.scheduled_start.hour < 12]
    assert len(monday_morning) > 300
    assert np.mean(monday_morning) > 1.5 * overall


def test_free_text_never_praises_a_poor_rating(fortnight):
    low = [f.free_text_feedback for f in fortnight.feedback if f.overall_rating <= 2 and f.free_text_feedback]
    assert len(low) > 50
    for t in low:
        assert not any(word in t.lower() for word in POSITIVE), t
    for pick in range(60):  # every wording and context remark the bands can produce
        for rating in (1, 1.4, 2, 2.4):
            for late in (False, True):
                t = text.comment(rating, pick, subject="Physics", late=late, technical=not late, first_session=True)
                assert not any(word in t.lower() for word in POSITIVE), t


def test_new_tutors_first_sessions_rate_lower_than_high_performers(world, fortnight):
    by = _by_archetype(world, fortnight.sessions)

    def first_mean(kind):
        return np.mean([s.student_rating for s in by[kind] if s.session_number == 1 and not s.no_show])

    assert first_mean(Archetype.new) < first_mean(Archetype.high_performer) - 0.4


def test_churners_stop_and_at_risk_tutors_decline(world, whole_span):
    sessions = defaultdict(list)
    for s in whole_span.sessions:
        sessions[s.tutor_id].append(s.scheduled_start)
    logins = defaultdict(list)
    for e in whole_span.events:
        if e.event_type == "login":
            logins[e.tutor_id].append(e.event_timestamp)
    quiet_from = END - timedelta(days=14)
    long_gone = 0
    for t in (t for t in world.tutors if t.archetype is Archetype.churner):
        assert all(ts < t.churn_at for ts in sessions[t.tutor_id] + logins[t.tutor_id])
        if t.churn_at <= quiet_from:
            long_gone += 1
            assert sessions[t.tutor_id], "a churner declines before leaving"
            assert not [ts for ts in sessions[t.tutor_id] if ts >= quiet_from]
    assert long_gone >= 5

    def ratio(kind, series):
        early = late = 0
        for t in (t for t in world.tutors if t.archetype is kind):
            early += sum(ts < world.epoch + timedelta(days=14) for ts in series[t.tutor_id])
            late += sum(ts >= quiet_from for ts in series[t.tutor_id])
        return late / early

    assert ratio(Archetype.at_risk, sessions) < 0.8 and ratio(Archetype.at_risk, logins) < 0.75
    assert 0.85 < ratio(Archetype.high_performer, sessions) < 1.35


def test_pair_numbering_continues_across_calls(world):
    pairs: dict = {}
    start = END - timedelta(days=3)
    a = simulate(world, start, start + timedelta(hours=30), sessions_per_day=1500, pair_counts=pairs)
    b = simulate(world, start + timedelta(hours=30), END, sessions_per_day=1500, pair_counts=pairs)
    numbers = defaultdict(list)
    for s in sorted(a.sessions + b.sessions, key=lambda s: (s.scheduled_start, s.session_id)):
        numbers[(s.tutor_id, s.student_id)].append(s.session_number)
    continued = 0
    for key, seq in numbers.items():
        first = world.prior_sessions.get(key, 0) + 1
        assert seq == list(range(first, first + len(seq))), key
        assert pairs[key] == seq[-1]
        continued += first > 1
    assert continued > 100, "tenured tutors keep their students from before the epoch"
    crossing = {(s.tutor_id, s.student_id) for s in a.sessions} & {(s.tutor_id, s.student_id) for s in b.sessions}
    assert crossing


def _count(engine, table) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(table)).scalar_one()


def test_backfill_is_idempotent_and_the_live_tick_continues_it(tmp_path):
    engine = core.db.get_engine("sqlite:///" + str(tmp_path / "t.db"))
    SQLModel.metadata.create_all(engine)
    with pytest.raises(SynthWorldMissing, match="synth backfill"):
        generate_tick(engine, tick_start=END, tick_end=END + timedelta(seconds=15))
    lines: list[str] = []
    first = backfill(engine, days=3, seed=5, n_tutors=20, sessions_per_day=300, end=END, progress=lines.append)
    assert lines[-1].startswith("day 3/3: ") and len(first.tutor_ids) == 20
    counts = [_count(engine, t) for t in (TutoringSession, StudentFeedback, TutorEvent)]
    assert all(counts) and counts == [first.sessions_created, first.feedback_created, first.events_created]
    assert 600 <= first.sessions_created <= 1200
    again = backfill(engine, days=3, seed=5, n_tutors=20, sessions_per_day=300, end=END, progress=lines.append)
    assert again.rows_created == 0 and again.world_id == first.world_id
    assert [_count(engine, t) for t in (TutoringSession, StudentFeedback, TutorEvent)] == counts
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).where(TutoringSession.evaluated_at.is_not(None))).scalar_one() == 0

    tick = (END + timedelta(hours=6), END + timedelta(hours=7))  # an evening hour: sessions certain
    batch = generate_tick(engine, tick_start=tick[0], tick_end=tick[1])
    assert batch.sessions and all(tick[0] <= s.scheduled_start < tick[1] for s in batch.sessions)
    with session_scope(engine) as db:
        ingest_sessions(db, batch.sessions, many=True)
        ingest_feedback(db, batch.feedback, many=True)
        ingest_events(db, batch.events, many=True)
    # A retried tick (its first attempt already ingested) regenerates the same rows: ingesting is a no-op.
    assert generate_tick(engine, tick_start=tick[0], tick_end=tick[1]) == batch
