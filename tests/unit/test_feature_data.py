"""ml/feature_data.py's fast reads, on SQLite and PostgreSQL: reading records older than DETAIL_DAYS only in part
gives the features a full read gives, and the database's day arithmetic agrees with Python's at day edges."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Integer, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import get_engine, session_scope
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from ml import feature_data
from ml.features import LOOKBACK_DAYS, FeatureFrame, build_features
from synth.backfill import backfill
from tests.factories import seed_people
from tests.unit.engine_fixtures import _stressed_scenario

END = datetime(2026, 11, 20, tzinfo=UTC)
WORLD_DAYS = 100  # longer than the lookback: late as-of days see sessions 30 to 90 days back


@pytest.fixture
def long_world(db_url: str, tmp_path: Path) -> Engine:
    engine = get_engine(db_url)
    backfill(engine, days=WORLD_DAYS, seed=5, n_tutors=8, sessions_per_day=40, end=END, progress=lambda _line: None,
             scenario=_stressed_scenario(tmp_path))
    return engine


def features(engine: Engine, start: date, end: date, monkeypatch: pytest.MonkeyPatch, *, full: bool,
             tutor_ids: list[str] | None = None) -> FeatureFrame:
    monkeypatch.setattr(feature_data, "DETAIL_DAYS", LOOKBACK_DAYS if full else feature_data.DETAIL_DAYS)
    with Session(engine) as db:
        return build_features(db, start=start, end=end, tutor_ids=tutor_ids)


def assert_same_features(partial: FeatureFrame, full: FeatureFrame) -> None:
    assert len(partial) == len(full) > 0
    assert list(partial.tutor_ids) == list(full.tutor_ids) and (partial.days == full.days).all()
    # The same records in both, but not all of them: a sum over a window can end in a different last bit when
    # records that left the window earlier are not in it (e.g. rating_trend 0.0 against 4e-16), never more.
    np.testing.assert_allclose(partial.X, full.X, rtol=0, atol=1e-12)


def test_partial_read_of_older_records_gives_the_full_read_features(long_world: Engine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    last = END.date() - timedelta(days=1)
    base = feature_data.midnight(last) - timedelta(days=LOOKBACK_DAYS)
    cut = feature_data.midnight(last) - timedelta(days=feature_data.DETAIL_DAYS)
    s = TutoringSession
    with Session(long_world) as db:
        older = db.execute(select(func.count(), func.sum(func.cast(s.session_number == 1, Integer)),
                                  func.sum(func.cast(s.no_show, Integer)))
                           .where(s.scheduled_start >= base, s.scheduled_start < cut)).one()
        data = feature_data.load(db, first_as_of=last, last_as_of=last, lookback_days=LOOKBACK_DAYS, tutor_ids=None)
    # Not vacuous: there are older sessions, first sessions and no-shows among them, and they were read in part.
    assert older[0] > 500 and older[1] > 20 and older[2] > 5, older
    assert (data.sessions.number == 0).sum() == older[0] - older[1]

    # Scoring one day: every older session collapses to its group's latest day.
    assert_same_features(features(long_world, last, last, monkeypatch, full=False),
                         features(long_world, last, last, monkeypatch, full=True))
    # A range whose early sessions leave the lookback window of later rows: those keep their own day.
    first = last - timedelta(days=44)
    assert_same_features(features(long_world, first, last, monkeypatch, full=False),
                         features(long_world, first, last, monkeypatch, full=True))
    some = ["tutor_0002", "tutor_0005", "tutor_0007"]
    assert_same_features(features(long_world, last, last, monkeypatch, full=False, tutor_ids=some),
                         features(long_world, last, last, monkeypatch, full=True, tutor_ids=some))


def test_days_are_utc_dates_at_the_edges(db_url: str) -> None:
    engine = get_engine(db_url)
    seed_people(engine, tutors=2, students=1)
    day = date(2026, 11, 20)
    edge = datetime(2026, 11, 19, 23, 59, 59, 999999, tzinfo=UTC)
    # 0.9996 s rounds up to the next second in SQLite's millisecond julianday(): the day must not move.
    starts = [edge, edge - timedelta(days=40), datetime(2026, 11, 1, tzinfo=UTC),
              datetime(2026, 8, 23, 23, 59, 59, 999600, tzinfo=UTC)]
    with session_scope(engine) as db:
        for i, start in enumerate(starts):
            db.add(TutoringSession(session_id=f"s{i}", tutor_id="tutor_1", student_id="student_1",
                                   session_number=1 if i == 3 else 5, scheduled_start=start, duration_minutes=45,
                                   subject="Mathematics", student_rating=4.0))
        db.flush()
        db.add(StudentFeedback(feedback_id="f3", session_id="s3", student_id="student_1", tutor_id="tutor_1",
                               overall_rating=2, submitted_at=datetime(2026, 8, 24, 23, 59, 59, 999999, tzinfo=UTC)))
        db.add(TutorEvent(event_id="e1", tutor_id="tutor_2", event_type="login", event_timestamp=edge,
                          event_metadata={"session_prep_minutes": 7}))
        db.add(TutorEvent(event_id="e2", tutor_id="tutor_2", event_type="login", event_timestamp=edge,
                          event_metadata={"session_prep_minutes": True}))  # a boolean is not a number
        db.add(TutorEvent(event_id="e5", tutor_id="tutor_2", event_type="login", event_timestamp=edge,
                          event_metadata={"session_prep_minutes": "5"}))  # nor is a numeric string
        db.add(TutorEvent(event_id="e3", tutor_id="tutor_2", event_type="message_response",
                          event_timestamp=edge - timedelta(days=2), event_metadata={"response_minutes": 13.1}))
        db.add(TutorEvent(event_id="e4", tutor_id="tutor_2", event_type="training_completed",
                          event_timestamp=datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC),
                          event_metadata={"module": "patience_and_feedback"}))
    with Session(engine) as db:
        data = feature_data.load(db, first_as_of=day, last_as_of=day, lookback_days=LOOKBACK_DAYS, tutor_ids=None)
    base = day - timedelta(days=LOOKBACK_DAYS)
    s = data.sessions
    assert sorted(s.day.tolist()) == sorted((t.date() - base).days for t in starts)
    first = s.number == 1
    assert s.feedback[first].tolist() == [2.0]
    assert s.feedback_visible[first].tolist() == [(date(2026, 8, 25) - base).days]  # from the day after
    # The session 40 days back is older than DETAIL_DAYS and not a first session: read in part, no hours.
    assert sorted(s.hours.tolist()) == [0.0, 0.75, 0.75, 0.75] and (s.number == 0).sum() == 1
    assert data.logins.day.tolist() == [(edge.date() - base).days] * 3
    assert sorted(data.logins.value.tolist(), key=np.isnan)[0] == 7.0 and np.isnan(data.logins.value).sum() == 2
    assert data.responses.value.tolist() == [13.1]
    assert data.trainings == [(1, "patience_and_feedback", (date(2026, 3, 2) - base).days)]
