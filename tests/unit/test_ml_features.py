"""The churn model's features (ml/features.py): exact values on hand-built histories, agreement with the
product's own metrics on an engine-built world, and the point-in-time guarantee (truncating history after day
d leaves day d's row unchanged)."""
from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import get_engine, session_scope
from core.migrate import upgrade
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.metrics.service import load_histories, window_metrics
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor
from ml.features import DESCRIPTIONS, FEATURES, FeatureFrame, build_features
from tests.factories import seed_people, truncated_copy
from tests.unit.engine_fixtures import RULES, World

D = date(2026, 11, 20)  # a Friday; as-of instant is its midnight
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


def at(days_ago: float, hours: float = 0.0) -> datetime:
    return AS_OF - timedelta(days=days_ago) + timedelta(hours=hours)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'ml.db'}"
    upgrade(url)
    eng = get_engine(url)
    seed_people(eng, tutors=6, students=1)
    yield eng
    eng.dispose()


_n = iter(range(10**6))


def session(tutor: str, when: datetime, **kw: object) -> TutoringSession:
    n = next(_n)
    body = dict(session_id=f"s{n}", tutor_id=tutor, student_id="student_1", session_number=kw.pop("number", 5),
                scheduled_start=when, duration_minutes=60, subject="Mathematics", student_rating=4.0)
    body.update(kw)
    return TutoringSession(**body)


def feedback(s: TutoringSession, rating: int, submitted: datetime) -> StudentFeedback:
    return StudentFeedback(feedback_id=f"f_{s.session_id}", session_id=s.session_id, student_id=s.student_id,
                           tutor_id=s.tutor_id, overall_rating=rating, submitted_at=submitted)


def event(tutor: str, kind: str, when: datetime, **meta: object) -> TutorEvent:
    return TutorEvent(event_id=f"e{next(_n)}", tutor_id=tutor, event_type=kind, event_timestamp=when, event_metadata=meta)


def add(engine: Engine, *rows: object) -> None:
    with session_scope(engine) as db:
        for r in rows:  # sessions before their feedback (foreign key)
            db.add(r)
            db.flush()


def features(engine: Engine, day: date = D, **kw: object) -> FeatureFrame:
    with Session(engine) as db:
        return build_features(db, start=day, end=day, **kw)


def value(ff: FeatureFrame, tutor: str, name: str, day: date = D) -> float:
    return float(ff.row(tutor, day)[FEATURES.index(name)])


def test_thirty_five_documented_features() -> None:
    assert len(FEATURES) == 35 and len(set(FEATURES)) == 35
    assert all(DESCRIPTIONS[n].strip() for n in FEATURES)


def test_session_counts_use_half_open_windows(engine: Engine) -> None:
    add(engine,
        session("tutor_1", at(1, 10)),  # yesterday
        session("tutor_1", at(7)),  # exactly the 7-day edge: inside [as_of - 7d, as_of)
        session("tutor_1", at(8, 23)),  # 30d only
        session("tutor_1", at(30)),  # the 30-day edge: inside
        session("tutor_1", at(31, 23.99)),  # 90d only
        session("tutor_1", AS_OF),  # at as-of: the future
        session("tutor_1", at(0, 10)))  # later that day: the future
    ff = features(engine)
    assert value(ff, "tutor_1", "sessions_7d") == 2
    assert value(ff, "tutor_1", "sessions_30d") == 4
    assert value(ff, "tutor_1", "sessions_90d") == 5
    assert value(ff, "tutor_1", "days_since_last_session") == 1
    assert value(ff, "tutor_1", "sessions_trend") == pytest.approx(2 / (4 * 7 / 30) - 1, rel=1e-6)
    assert np.isnan(value(ff, "tutor_2", "days_since_last_session"))  # nothing in 90 days
    assert np.isnan(value(ff, "tutor_2", "sessions_trend"))
    # As of the day before, yesterday's session is still in the future and the window reaches a day further back.
    before = D - timedelta(days=1)
    assert value(features(engine, before), "tutor_1", "sessions_7d", before) == 2


def test_rating_uses_feedback_only_once_submitted(engine: Engine) -> None:
    a = session("tutor_1", at(2), student_rating=3.0)
    b = session("tutor_1", at(3), student_rating=4.0)
    c = session("tutor_1", at(4), student_rating=None)
    add(engine, a, b, c,
        feedback(a, 5, at(1)),  # submitted before as-of: replaces the quick rating
        feedback(b, 1, AS_OF),  # submitted at as-of: not yet visible, the quick 4.0 stands
        feedback(c, 2, at(-1)),  # submitted tomorrow: c is still unrated
        session("tutor_1", at(10), student_rating=2.0),  # 30d only
        session("tutor_1", at(1), student_rating=1.0, no_show=True))  # a no-show carries no rating
    ff = features(engine)
    assert value(ff, "tutor_1", "avg_rating_7d") == pytest.approx((5 + 4) / 2)
    assert value(ff, "tutor_1", "avg_rating_30d") == pytest.approx((5 + 4 + 2) / 3)
    assert value(ff, "tutor_1", "rating_trend") == pytest.approx(4.5 - 11 / 3, rel=1e-6)
    assert np.isnan(value(ff, "tutor_2", "avg_rating_7d"))
    # A day later b's feedback (1) is visible, and c's still is not.
    tomorrow = D + timedelta(days=1)
    later = features(engine, tomorrow)
    assert value(later, "tutor_1", "avg_rating_7d", tomorrow) == pytest.approx((5 + 1) / 2)


def test_first_session_success_rate(engine: Engine) -> None:
    a = session("tutor_1", at(20), number=1, student_rating=3.0)
    add(engine, a, feedback(a, 4, at(19)),  # the feedback makes it a success
        session("tutor_1", at(40), number=1, student_rating=2.0),
        session("tutor_1", at(5), number=1, student_rating=5.0),
        session("tutor_1", at(95), number=1, student_rating=5.0),  # outside 90 days
        session("tutor_1", at(3), number=2, student_rating=1.0))  # not a first session
    assert value(features(engine), "tutor_1", "first_session_success_rate") == pytest.approx(2 / 3)


def test_behaviour_counts_and_rates(engine: Engine) -> None:
    add(engine,
        session("tutor_1", at(14), no_show=True, student_rating=None),  # the 14-day edge: inside
        session("tutor_1", at(15), no_show=True, student_rating=None),  # 30d only
        session("tutor_1", at(2), tutor_initiated_reschedule=True, late_start_minutes=4),
        session("tutor_1", at(20), late_start_minutes=0, learning_objectives_met=False),
        session("tutor_1", at(3), learning_objectives_met=True, subject="Physics"))
    ff = features(engine)
    assert value(ff, "tutor_1", "no_show_count_14d") == 1
    assert value(ff, "tutor_1", "no_show_count_30d") == 2
    assert value(ff, "tutor_1", "reschedule_rate_7d") == pytest.approx(1 / 2)
    assert value(ff, "tutor_1", "reschedule_rate_30d") == pytest.approx(1 / 5)
    assert value(ff, "tutor_1", "late_start_count_30d") == 1
    assert value(ff, "tutor_1", "objectives_met_rate_30d") == pytest.approx(1 / 2)
    assert value(ff, "tutor_1", "subjects_taught_count") == 2
    assert value(ff, "tutor_1", "days_active_14d") == 2  # the no-show on day -14 does not count
    assert value(ff, "tutor_1", "availability_hours_current_week") == 2  # two 60-minute sessions


def test_logins_responses_and_engagement(engine: Engine) -> None:
    logins = [event("tutor_1", "login", at(d, 9), session_prep_minutes=12) for d in range(1, 8)]  # one a day, 7d
    logins += [event("tutor_1", "login", at(d, 9), session_prep_minutes=6) for d in range(20, 27)]
    replies = [event("tutor_1", "message_response", at(d, 3), response_minutes=m)
               for d, m in [(1, 10), (2, 20), (3, 30), (4, 40), (29, 100), (31, 5)]]
    add(engine, *logins, *replies, event("tutor_1", "message_response", AS_OF, response_minutes=999))
    ff = features(engine)
    assert value(ff, "tutor_1", "login_frequency_7d") == 1.0
    assert value(ff, "tutor_1", "login_frequency_30d") == pytest.approx(14 / 30)
    assert value(ff, "tutor_1", "response_time_p50") == 30  # of 10, 20, 30, 40, 100
    assert value(ff, "tutor_1", "response_time_p95") == pytest.approx(40 + 0.8 * 60)
    assert value(ff, "tutor_1", "session_prep_minutes_30d") == pytest.approx(9.0)
    assert value(ff, "tutor_1", "login_change_14d") == 0  # 7 logins in 14 days, 7 in the 14 before
    e = RULES.engagement
    login_part, prep_part = 14 / 30, 9 / e.expected_prep_minutes
    comm = (e.response_bad_minutes - 40) / (e.response_bad_minutes - e.response_good_minutes)
    expected = (e.login_weight * login_part + e.prep_weight * prep_part + e.communication_weight * comm) / (
        e.login_weight + e.prep_weight + e.communication_weight)
    assert value(ff, "tutor_1", "engagement_score") == pytest.approx(expected, rel=1e-6)
    # No messages: the communication part is left out, no logins: prep scores 0.
    assert value(ff, "tutor_2", "engagement_score") == 0
    assert np.isnan(value(ff, "tutor_2", "response_time_p95"))


def test_login_change_and_training(engine: Engine) -> None:
    add(engine, *[event("tutor_1", "login", at(d, 1)) for d in (1, 2, 15, 16, 17, 18)],
        event("tutor_1", "training_completed", at(200), module="first_session_excellence"),  # cumulative: counts
        event("tutor_1", "training_completed", at(3), module="first_session_excellence"),  # the same module again
        event("tutor_1", "training_completed", at(2), module="patience_and_feedback"),
        event("tutor_1", "training_completed", at(2), module="not_required"),
        event("tutor_1", "training_completed", at(0, 1), module="engaging_online_students"),  # today: future
        event("tutor_1", "availability_change", at(3), hours_per_week_delta=-4))
    ff = features(engine)
    assert value(ff, "tutor_1", "login_change_14d") == pytest.approx(2 / 4 - 1)
    required = len(RULES.secondary.required_training_modules)
    assert value(ff, "tutor_1", "training_completion_rate") == pytest.approx(2 / required)
    assert value(ff, "tutor_1", "availability_delta_hours_30d") == -4


def test_tenure_and_calendar(engine: Engine) -> None:
    with session_scope(engine) as db:
        db.get(Tutor, "tutor_1").onboarding_date = D - timedelta(days=29)
        db.get(Tutor, "tutor_2").onboarding_date = D - timedelta(days=30)
        db.get(Tutor, "tutor_3").onboarding_date = D + timedelta(days=1)  # not yet onboarded: no row
    ff = features(engine)
    assert (value(ff, "tutor_1", "tenure_days"), value(ff, "tutor_1", "is_new_tutor")) == (29, 1)
    assert (value(ff, "tutor_2", "tenure_days"), value(ff, "tutor_2", "is_new_tutor")) == (30, 0)
    assert "tutor_3" not in set(ff.tutor_ids)
    assert value(ff, "tutor_1", "day_of_week") == 4 and value(ff, "tutor_1", "month") == 11
    assert value(ff, "tutor_1", "is_holiday_season") == 1
    with Session(engine) as db:
        span = build_features(db, start=date(2026, 1, 4), end=date(2026, 1, 7), tutor_ids=["tutor_4"])
    assert [int(v) for v in span.column("is_holiday_season")] == [1, 0, 0]  # 5 January is the last day
    assert [int(v) for v in span.column("day_of_week")] == [0, 1, 2]
    assert [str(d) for d in span.days] == ["2026-01-05", "2026-01-06", "2026-01-07"]  # onboarded 5 January


# --- point-in-time: truncating history after day d leaves day d's row unchanged ------------------------------

def assert_same_rows(full: FeatureFrame, alone: FeatureFrame, day: date) -> None:
    on_day = full.days == np.datetime64(day, "D")
    assert len(alone) == on_day.sum() > 0
    assert list(alone.tutor_ids) == list(full.tutor_ids[on_day])
    np.testing.assert_array_equal(alone.X, full.X[on_day])  # NaN equals NaN here


def test_truncating_history_leaves_rows_unchanged_hand_built(engine: Engine, tmp_path: Path) -> None:
    a = session("tutor_1", at(1), student_rating=3.0)
    add(engine, a, feedback(a, 5, AS_OF + timedelta(hours=2)),  # feedback arriving after the cut
        *[session("tutor_1", at(d, 5), no_show=d % 4 == 0) for d in range(-5, 40, 2)],
        *[event("tutor_1", "login", at(d, 8), session_prep_minutes=d) for d in range(-5, 40)],
        *[event("tutor_1", "message_response", at(d, 2), response_minutes=d * 3 + 1) for d in range(-5, 40, 3)],
        event("tutor_1", "training_completed", at(-1), module="patience_and_feedback"))
    with Session(engine) as db:
        full = build_features(db, start=D - timedelta(days=10), end=D + timedelta(days=5))
    copy = truncated_copy(engine, tmp_path, D)
    with Session(copy) as db:
        alone = build_features(db, start=D, end=D)
    copy.dispose()
    assert_same_rows(full, alone, D)
    # The data after the cut did matter to later rows, so the equality above is not vacuous.
    assert value(full, "tutor_1", "avg_rating_7d", D + timedelta(days=1)) != value(full, "tutor_1", "avg_rating_7d")


def test_truncating_history_leaves_rows_unchanged_engine_world(world: World, tmp_path: Path) -> None:
    first, last = world.epoch.date() + timedelta(days=1), world.end.date()
    with Session(world.engine) as db:
        started = time.perf_counter()
        full = build_features(db, start=first, end=last)
        print(f"\nfeatures for {len(full)} tutor-days of the engine world: {time.perf_counter() - started:.3f}s")
    crossing = 0
    for cut in (first + timedelta(days=4), first + timedelta(days=11), last - timedelta(days=1)):
        at_cut = datetime(cut.year, cut.month, cut.day, tzinfo=UTC)
        with Session(world.engine) as db:  # feedback given after the cut for a session before it
            crossing += db.execute(select(func.count()).select_from(StudentFeedback).join(
                TutoringSession, TutoringSession.session_id == StudentFeedback.session_id).where(
                TutoringSession.scheduled_start < at_cut, StudentFeedback.submitted_at >= at_cut)).scalar_one()
        copy = truncated_copy(world.engine, tmp_path, cut)
        with Session(copy) as db:
            alone = build_features(db, start=cut, end=cut)
        copy.dispose()
        assert_same_rows(full, alone, cut)
    assert crossing > 0, "no feedback crosses a cut: the rating part of the test would prove nothing"


# --- agreement with the product's metrics on the engine world ------------------------------------------------

@pytest.mark.parametrize("offset", [8, 20])
def test_features_match_product_metrics(world: World, offset: int) -> None:
    day = world.epoch.date() + timedelta(days=offset)
    as_of = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with Session(world.engine) as db:
        ff = build_features(db, start=day, end=day)
        histories = load_histories(db, list(ff.tutor_ids), since=as_of - timedelta(days=90), until=as_of)
    checked = 0
    for tutor in ff.tutor_ids:
        m30 = window_metrics(histories[tutor], as_of=as_of, days=30, rules=RULES)
        m7 = window_metrics(histories[tutor], as_of=as_of, days=7, rules=RULES)
        m90 = window_metrics(histories[tutor], as_of=as_of, days=90, rules=RULES)
        got = {n: float(v) for n, v in zip(FEATURES, ff.row(tutor, day), strict=True)}
        expect = {
            "sessions_7d": m7.sessions_scheduled, "sessions_30d": m30.sessions_scheduled,
            "avg_rating_7d": m7.satisfaction_avg, "avg_rating_30d": m30.satisfaction_avg,
            "first_session_success_rate": m90.first_session_success_rate,
            "reschedule_rate_30d": m30.reschedule_rate, "no_show_count_30d": m30.no_show_count,
            "login_frequency_30d": m30.logins / 30, "engagement_score": m30.engagement_score,
            "response_time_p95": m30.response_time_p95_minutes,
            "objectives_met_rate_30d": m30.learning_objectives_met_pct,
            "availability_delta_hours_30d": m30.availability_hours_delta,
            "late_start_count_30d": round((m30.late_start_rate or 0) * m30.sessions_completed),
        }
        for name, want in expect.items():
            if want is None:
                assert np.isnan(got[name]), (tutor, name)
            else:
                assert got[name] == pytest.approx(want, rel=1e-5, abs=1e-5), (tutor, name, got[name], want)
        checked += m30.sessions_scheduled > 0
    assert checked >= 3
