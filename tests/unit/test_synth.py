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
import synth.truth  # noqa: F401  (the ground-truth tables, which domain.registry leaves out)
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
from synth.agents import Agents
from synth.backfill import backfill
from synth.live import SynthWorldMissing, generate_tick
from synth.scenario import load_scenario
from synth.simulate import simulate
from synth.store import insert_missing, upsert_truth
from synth.truth import TruthTransition, TruthTutor
from synth.world import ARCHETYPES, build_world

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPAN = 60
POSITIVE = ("great", "excellent", "amazing", "fantastic", "best", "love", "awesome", "perfect", "helpful!",
            "super", "can't wait", "clear explanations", "learned a lot")


def _agents(seed: int, n: int, epoch: datetime) -> Agents:
    return Agents(build_world(seed, n, epoch, load_scenario()))


@pytest.fixture(scope="module")
def world():
    """The agents of a 250-tutor world whose epoch is SPAN days before END."""
    return _agents(7, 250, END - timedelta(days=SPAN))


@pytest.fixture(scope="module")
def fortnight(world):
    """The last 14 days at the PRD volume."""
    return simulate(world, END - timedelta(days=14), END, sessions_per_day=3000, pair_counts={})


def test_same_seed_same_rows_different_seed_differs():
    epoch = END - timedelta(days=10)
    a, b, c = _agents(3, 30, epoch), _agents(3, 30, epoch), _agents(4, 30, epoch)
    rows = [[w.world.tutor_row(i, w.onboarding_date(i)) for i in w.known_tutors()] for w in (a, b)]
    assert rows[0] == rows[1] and a.world.student_rows() == b.world.student_rows()
    assert a.world.prior_sessions == b.world.prior_sessions
    run = [simulate(w, epoch + timedelta(days=2), epoch + timedelta(days=4), sessions_per_day=400, pair_counts={})
           for w in (a, b, c)]
    assert run[0].sessions and run[0].sessions == run[1].sessions
    assert run[0].feedback == run[1].feedback and run[0].events == run[1].events
    assert a.truth_rows(1, END) == b.truth_rows(1, END) and a.transition_rows(epoch, END) == b.transition_rows(epoch, END)
    assert [s.model_dump() for s in run[0].sessions] != [s.model_dump() for s in run[2].sessions]


def test_same_interval_twice_is_identical_including_a_live_tick(world):
    start = END + timedelta(hours=6)  # 18:00, the evening peak
    for length in (timedelta(seconds=15), timedelta(minutes=30)):
        pairs = dict(world.world.prior_sessions)
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
    # Stepping the agents further, or rebuilding them, never rewrites a day already simulated.
    fresh = _agents(7, 250, world.world.epoch)
    assert simulate(fresh, d0, d0 + timedelta(days=2), sessions_per_day=800, pair_counts={}) == whole


def test_archetype_shares_match_the_prd(world):
    kinds = world.world.archetype[:250]
    expected = {"high_performer": 0.30, "at_risk": 0.20, "new": 0.25, "steady": 0.20, "churner": 0.05}
    for kind, share in expected.items():
        assert abs(np.mean(kinds == ARCHETYPES.index(kind)) - share) <= 0.005, kind
    hired = [i for i in world.known_tutors() if i >= 250]
    assert hired and all(world.world.archetype[i] == ARCHETYPES.index("new") for i in hired)


def test_rows_fit_the_tables_and_new_tutors_are_new(world):
    rows = [world.world.tutor_row(i, world.onboarding_date(i)) for i in world.known_tutors()]
    # email_hash is filled on insert from email by the column's default (core.crypto.hash_default).
    assert set(rows[0]) == set(Tutor.__table__.columns.keys()) - {"email_hash"}
    assert set(world.world.student_rows()[0]) == set(Student.__table__.columns.keys())
    baselines = [r["baseline_sessions_per_week"] for r in rows]
    assert 5 <= min(baselines) and max(baselines) <= 30 and 12 <= np.mean(baselines) <= 18
    assert all(8 <= s.age <= 18 and s.subjects_interested for s in world.world.students)
    epoch = world.world.epoch.date()
    for r in rows[:250]:
        tenure = (epoch - r["onboarding_date"]).days
        assert (0 <= tenure < 30) if r["behavioral_archetype"] == Archetype.new else tenure >= 30
    assert [r["tutor_id"] for r in rows[250:252]] == ["tutor_0251", "tutor_0252"]
    assert all(r["onboarding_date"] > epoch for r in rows[250:])


def test_volume_is_about_3000_a_day(fortnight):
    per_day = len(fortnight.sessions) / 14
    assert 2700 <= per_day <= 3300, per_day
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
        first = world.world.prior_sessions.get(key, 0) + 1
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
    assert lines[-1].startswith("day 3/3 ") and "sessions" in lines[-1] and len(first.tutor_ids) >= 20
    assert first.scenario_hash == load_scenario().hash
    counts = [_count(engine, t) for t in (TutoringSession, StudentFeedback, TutorEvent)]
    assert all(counts) and counts == [first.sessions_created, first.feedback_created, first.events_created]
    assert 600 <= first.sessions_created <= 1200
    again = backfill(engine, days=3, seed=5, n_tutors=20, sessions_per_day=300, end=END, progress=lines.append)
    assert again.rows_created == 0 and again.world_id == first.world_id
    assert [_count(engine, t) for t in (TutoringSession, StudentFeedback, TutorEvent)] == counts
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).where(TutoringSession.evaluated_at.is_not(None))).scalar_one() == 0

    with session_scope(engine) as db:
        truth = {r.tutor_id: r for r in db.execute(select(TruthTutor)).scalars()}
        assert set(truth) == set(first.tutor_ids) and all(r.world_id == first.world_id for r in truth.values())
        assert all((r.churned_at is None) == (r.churn_cause is None) for r in truth.values())
        assert all(r.churned_at is None or r.churned_at <= END for r in truth.values())
        assert db.execute(select(func.count()).select_from(TruthTransition)).scalar_one() > 0

    tick = (END + timedelta(hours=6), END + timedelta(hours=7))  # an evening hour: sessions certain
    batch = generate_tick(engine, tick_start=tick[0], tick_end=tick[1])
    assert batch.sessions and all(tick[0] <= s.scheduled_start < tick[1] for s in batch.sessions)
    assert {r["tutor_id"] for r in batch.truth_tutors} >= set(first.tutor_ids)
    with session_scope(engine) as db:
        insert_missing(db, Tutor, "tutor_id", batch.tutors)
        upsert_truth(db, batch.truth_tutors, batch.truth_transitions)
        ingest_sessions(db, batch.sessions, many=True)
        ingest_feedback(db, batch.feedback, many=True)
        ingest_events(db, batch.events, many=True)
    # A retried tick (its first attempt already ingested) regenerates the same rows: ingesting is a no-op.
    assert generate_tick(engine, tick_start=tick[0], tick_end=tick[1]) == batch
    with session_scope(engine) as db:
        assert upsert_truth(db, batch.truth_tutors, batch.truth_transitions) == 0


def test_hires_arrive_in_live_ticks_before_their_sessions(tmp_path):
    """A tutor hired after the backfill is in the tick's batch, so the activity can insert them first."""
    engine = core.db.get_engine("sqlite:///" + str(tmp_path / "t.db"))
    SQLModel.metadata.create_all(engine)
    report = backfill(engine, days=2, seed=9, n_tutors=40, sessions_per_day=400, end=END, progress=lambda _: None)
    batch = generate_tick(engine, tick_start=END, tick_end=END + timedelta(days=45))
    hired = {r["tutor_id"] for r in batch.tutors}
    assert hired and not hired & set(report.tutor_ids)
    assert hired & {s.tutor_id for s in batch.sessions}, "hires teach"
    churned = [r for r in batch.truth_tutors if r["churned_at"] is not None]
    assert churned and all(r["churn_cause"] for r in churned)
    last_session = {}
    for s in batch.sessions:
        last_session[s.tutor_id] = max(last_session.get(s.tutor_id, s.scheduled_start), s.scheduled_start)
    for r in churned:  # nothing after the tutor truly left
        assert last_session.get(r["tutor_id"], r["churned_at"] - timedelta(seconds=1)) < r["churned_at"]
    with session_scope(engine) as db:
        assert insert_missing(db, Tutor, "tutor_id", batch.tutors) == len(hired)
        assert ingest_sessions(db, batch.sessions, many=True)


def test_live_feed_continues_the_recorded_scenario_and_refuses_a_changed_one(tmp_path) -> None:  # noqa: ANN001
    from datetime import UTC, datetime, timedelta

    from core.db import get_engine
    from core.migrate import upgrade
    from synth.backfill import backfill
    from synth.live import ScenarioChanged, generate_tick
    from synth.scenario import DEFAULT_PATH

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(DEFAULT_PATH.read_text())
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(url)
    engine = get_engine(url)
    end = datetime(2026, 11, 2, tzinfo=UTC)
    backfill(engine, days=2, seed=5, n_tutors=15, sessions_per_day=150, end=end, scenario=scenario, progress=lambda _m: None)
    batch = generate_tick(engine, tick_start=end, tick_end=end + timedelta(hours=12))
    assert batch.sessions  # continues with the recorded file
    scenario.write_text(DEFAULT_PATH.read_text() + "\n# an edit that changes nothing but a comment\n")
    assert generate_tick(engine, tick_start=end, tick_end=end + timedelta(hours=12)).sessions == batch.sessions
    scenario.write_text(DEFAULT_PATH.read_text().replace("sessions_per_day:", "sessions_per_day: 999 #", 1))
    with pytest.raises(ScenarioChanged, match="changed since the backfill"):
        generate_tick(engine, tick_start=end, tick_end=end + timedelta(hours=12))
