"""The first-session model (PRD Model 2): exact features on hand-built records, agreement with the product's own
metrics and the point-in-time guarantee on an engine-built world, learning above chance there, explanations
that add up, and rules that keep risk out of what tutors read."""
from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import get_engine, session_scope
from core.migrate import upgrade
from domain.feedback.models import StudentFeedback
from domain.metrics.service import load_histories, window_metrics
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from ml.first_session import (
    FEATURES, HISTORY, NUMERIC, Upcoming, age_of, describe, first_sessions, history_in_bulk, history_per_tutor,
)
from ml.first_session_model import NotEnoughData, temporal_segments, train
from rules.first_session import RulesError, load_first_session_rules
from synth.backfill import backfill
from tests.factories import seed_people, truncated_copy
from tests.unit.engine_fixtures import RULES, WORLD_END, WORLD_SEED

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
FS = load_first_session_rules(RULES_DIR / "first_session.yaml").spec
D = date(2026, 11, 20)  # a Friday; history is read as of its midnight
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
# Big enough for a few hundred first sessions per segment: 30 tutors, 45 days, 300 sessions a day (~10 s).
BIG = {"days": 45, "n_tutors": 30, "sessions_per_day": 300}


def at(days_ago: float, hours: float = 0.0) -> datetime:
    return AS_OF - timedelta(days=days_ago) + timedelta(hours=hours)


def col(table, name: str) -> np.ndarray:  # noqa: ANN001
    return table.column(name).astype(np.float64) if name in NUMERIC else table.column(name)


# --- hand-built records: exact values -------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'fs.db'}"
    upgrade(url)
    eng = get_engine(url)
    seed_people(eng, tutors=3, students=1)  # onboarded 2026-01-05; student_1 is 15
    yield eng
    eng.dispose()


_n = iter(range(10**6))


def session(tutor: str, when: datetime, *, number: int = 5, rating: float | None = 4.0, **kw: object) -> TutoringSession:
    return TutoringSession(session_id=f"s{next(_n)}", tutor_id=tutor, student_id="student_1", session_number=number,
                           scheduled_start=when, duration_minutes=60, subject="Mathematics", student_rating=rating, **kw)


def feedback(s: TutoringSession, rating: int, submitted: datetime) -> StudentFeedback:
    return StudentFeedback(feedback_id=f"f_{s.session_id}", session_id=s.session_id, student_id=s.student_id,
                           tutor_id=s.tutor_id, overall_rating=rating, submitted_at=submitted)


def add(engine: Engine, *rows: object) -> None:
    with session_scope(engine) as db:
        for r in rows:
            db.add(r)
            db.flush()


def booking(tutor: str, student: str = "student_1", start: datetime = AS_OF + timedelta(hours=17.5)) -> Upcoming:
    return Upcoming(key=f"b-{tutor}-{student}", tutor_id=tutor, student_id=student, subject="Physics", scheduled_start=start)


def test_features_of_a_booking_are_exact(engine: Engine) -> None:
    regular = [session("tutor_1", at(2, h)) for h in range(6)]  # six rated sessions, quick rating 4.0
    first_a = session("tutor_1", at(10), number=1, rating=4.5)  # a success
    first_b = session("tutor_1", at(5), number=1, rating=2.0)  # a success once its feedback (4) is in
    add(engine, *regular, first_a, first_b,
        feedback(regular[0], 2, at(1)),  # visible before midnight: replaces the 4.0
        feedback(regular[1], 5, AS_OF + timedelta(hours=1)),  # after midnight: the 4.0 stands
        feedback(first_b, 4, at(4)),
        session("tutor_1", at(100), number=1, rating=1.0),  # outside the 90 days
        session("tutor_1", at(3), rating=None, no_show=True),  # a no-show carries no rating
        session("tutor_1", at(0, 0.5), rating=1.0),  # the booking's own day: not yet history
        *[session("tutor_2", at(3, h)) for h in range(5)],  # exactly five rated: no average (PRD: more than 5)
        Student(student_id="student_g", name="Grade Seven", age=None, grade_level="Grade 7"))
    with Session(engine) as db:
        t = describe(db, [booking("tutor_1"), booking("tutor_2", "student_g"), booking("tutor_3")], [D, D, D],
                     scoring=RULES)
    assert list(col(t, "rated_sessions_30d")[:2]) == [8, 5]
    assert col(t, "avg_rating_30d")[0] == pytest.approx((2 + 4 * 5 + 4.5 + 4) / 8)
    assert math.isnan(col(t, "avg_rating_30d")[1])
    assert col(t, "first_sessions_rated")[0] == 2 and col(t, "first_session_success_rate")[0] == 1.0
    assert math.isnan(col(t, "first_session_success_rate")[1])  # no rated first session: unknown, not 0
    assert list(col(t, "tenure_days")) == [(D - date(2026, 1, 5)).days] * 3
    assert list(col(t, "student_age")) == [15, 12, 15]
    assert list(t.column("hour_block")) == ["16-20h UTC"] * 3 and list(t.column("weekday")) == ["Fri"] * 3
    assert list(t.column("subject")) == ["Physics"] * 3
    assert list(col(t, "engagement_score")) == [0, 0, 0]  # no logins: the product's composite is 0
    # A day later the feedback given after midnight is visible and the same-day session has joined the window.
    with Session(engine) as db:
        later = describe(db, [booking("tutor_1")], [D + timedelta(days=1)], scoring=RULES)
    assert col(later, "avg_rating_30d")[0] == pytest.approx((2 + 5 + 4 * 4 + 4.5 + 4 + 1) / 9)


def test_student_age_falls_back_on_grade_level() -> None:
    assert age_of(11, "Grade 2") == 11
    assert age_of(None, "Grade 10") == 15 and age_of(None, "K") == 5 and age_of(None, "8") == 13
    assert math.isnan(age_of(None, "College")) and math.isnan(age_of(None, None))


def test_temporal_split_keeps_order_and_ties() -> None:
    starts = np.array(["2026-01-01T10"] * 3 + [f"2026-01-{d:02d}T10" for d in range(2, 19)], dtype="datetime64[s]")
    seg = temporal_segments(starts)
    assert list(seg) == sorted(seg)  # later sessions never in an earlier segment
    assert set(seg[:3]) == {0}  # sessions at the same instant stay together
    assert [int((seg == k).sum()) for k in range(3)] == [14, 3, 3]


# --- an engine-built world ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    folder = tmp_path_factory.mktemp("first_session_world")
    url = f"sqlite:///{folder / 'world.db'}"
    upgrade(url)
    eng = get_engine(url)
    backfill(eng, seed=WORLD_SEED, end=WORLD_END, progress=lambda _line: None, **BIG)
    yield eng
    eng.dispose()


def _span(engine: Engine) -> tuple[date, date]:
    with Session(engine) as db:
        first, last = db.execute(select(func.min(TutoringSession.scheduled_start),
                                        func.max(TutoringSession.scheduled_start))).one()
    return first.date(), last.date()


def test_truncating_history_after_a_session_start_leaves_its_features(big_world: Engine, tmp_path: Path) -> None:
    first, last = _span(big_world)
    with Session(big_world) as db:
        full = first_sessions(db, start=first + timedelta(days=20), end=last, scoring=RULES)
    # A first session late in the world, and everything after its scheduled start removed.
    pick = len(full) * 3 // 4
    cut = full.starts[pick].astype(datetime).replace(tzinfo=UTC)
    same_day = (full.starts >= np.datetime64(cut.date(), "s")) & (full.starts >= full.starts[pick])
    same_day &= full.starts < np.datetime64(cut.date() + timedelta(days=1), "s")
    with Session(big_world) as db:
        crossing = db.execute(select(func.count()).select_from(StudentFeedback).join(
            TutoringSession, TutoringSession.session_id == StudentFeedback.session_id).where(
            TutoringSession.scheduled_start < cut, StudentFeedback.submitted_at >= cut)).scalar_one()
        items = [Upcoming(k, t, s.student_id, s.subject, s.scheduled_start) for k, t, s in
                 ((k, t, db.get(TutoringSession, k)) for k, t in zip(full.keys[same_day], full.tutor_ids[same_day], strict=True))]
    assert len(items) > 0 and crossing > 0, "nothing crosses the cut: the test would prove nothing"
    copy = truncated_copy(big_world, tmp_path, cut)
    tutors, days = [u.tutor_id for u in items], [cut.date()] * len(items)
    with Session(copy) as db:
        assert db.get(TutoringSession, str(full.keys[pick])) is None  # the session itself is gone
        alone = describe(db, items, days, scoring=RULES)
        readers = [history_in_bulk(db, tutors, days, scoring=RULES), history_per_tutor(db, tutors, days, scoring=RULES)]
    copy.dispose()
    # Equal up to float summation order: a booking's few tutors are read one by one, the training set's in bulk.
    np.testing.assert_allclose(alone.X[:, :len(NUMERIC)].astype(np.float64),
                               full.X[same_day][:, :len(NUMERIC)].astype(np.float64), rtol=1e-12)
    assert (alone.X[:, len(NUMERIC):] == full.X[same_day][:, len(NUMERIC):]).all()
    for history in readers:  # both readers of the tutor's history, each on the truncated copy
        for name in HISTORY:
            np.testing.assert_allclose(history[name], full.column(name)[same_day].astype(np.float64), rtol=1e-12)


def test_history_features_agree_with_the_product_metrics(big_world: Engine) -> None:
    first, last = _span(big_world)
    with Session(big_world) as db:
        table = first_sessions(db, start=last - timedelta(days=3), end=last, scoring=RULES)
        day = table.starts[0].astype(datetime).date()
        as_of = datetime(day.year, day.month, day.day, tzinfo=UTC)
        on_day = table.starts < np.datetime64(day + timedelta(days=1), "s")
        tutors = sorted(set(table.tutor_ids[on_day]))
        histories = load_histories(db, tutors, since=as_of - timedelta(days=90), until=as_of)
    assert len(tutors) >= 5
    # The booking reader (tutor by tutor, the product's metrics) and the training reader (bulk grid) agree.
    with Session(big_world) as db:
        pairs = [str(t) for t in table.tutor_ids], [d.astype(datetime).date() for d in table.starts]
        bulk, one_by_one = (f(db, *pairs, scoring=RULES) for f in (history_in_bulk, history_per_tutor))
    assert len(pairs[0]) > 30 and len(set(pairs[1])) > 1
    for name in HISTORY:
        np.testing.assert_allclose(one_by_one[name], bulk[name], rtol=1e-9, atol=1e-12)
    for i in np.flatnonzero(on_day):
        h = histories[table.tutor_ids[i]]
        m30 = window_metrics(h, as_of=as_of, days=30, rules=RULES)
        m90 = window_metrics(h, as_of=as_of, days=90, rules=RULES)
        row = dict(zip(FEATURES, table.X[i], strict=True))
        assert row["rated_sessions_30d"] == m30.ratings_count
        assert row["engagement_score"] == pytest.approx(m30.engagement_score, abs=1e-9)
        assert row["first_sessions_rated"] == m90.first_session_rated
        expected = m30.satisfaction_avg if m30.ratings_count > 5 else math.nan
        assert row["avg_rating_30d"] == pytest.approx(expected, nan_ok=True)
        assert row["first_session_success_rate"] == pytest.approx(
            m90.first_session_success_rate if m90.first_session_success_rate is not None else math.nan, nan_ok=True)


def test_the_model_learns_on_an_engine_world(big_world: Engine) -> None:
    first, last = _span(big_world)
    with Session(big_world) as db:
        table = first_sessions(db, start=first, end=last, scoring=RULES)
    lines: list[str] = []
    t = train(table, poor_below=FS.poor_rating_below, threshold=FS.alert_threshold, c_grid=FS.training.c_grid,
              min_sessions=FS.training.min_first_sessions, min_poor=FS.training.min_poor_per_segment,
              progress=lines.append)
    test = t.metrics["test"]
    print(f"\nfirst-session model on {len(table)} first sessions: test AUC {test['auc']:.3f}, Brier {test['brier']:.4f}, "
          f"base rate {test['base_rate']:.3f}, C={t.model.c}")
    assert t.counts["test"]["sessions"] >= 250 and t.counts["test"]["poor"] >= 40
    assert test["auc"] > 0.6  # chance is 0.5: tenure and the tutor's ratings carry the engine's signal
    assert test["brier_skill"] > 0  # better calibrated than always saying the base rate
    assert len(t.search) == len(FS.training.c_grid) and any(line.startswith("chose C=") for line in lines)
    assert str(t.model.c) in t.search and t.search[str(t.model.c)] == min(t.search.values())
    # Newer tutors do worse in the engine; the model reads it the same way.
    tenure = next(c for c in t.model.coefficients() if c["column"] == "num__x0")
    assert tenure["coefficient"] < 0 and "odds of a poor first session" in tenure["text"]

    # Each row's contributions add up to its log-odds against the average training session.
    X = table.X[t.segments == 2][:50]
    p = t.model.predict(X)
    lr = t.model.pipeline.named_steps["lr"]
    reference = float(lr.intercept_[0] + lr.coef_[0] @ t.model.reference)
    np.testing.assert_allclose(t.model.contributions(X).sum(axis=1), np.log(p / (1 - p)) - reference, atol=1e-9)
    for factors in t.model.factors(X, top=3):
        assert len(factors) <= 3 and all(f["contribution"] > 0 and f["text"].endswith("raises the risk") for f in factors)
        assert [f["contribution"] for f in factors] == sorted((f["contribution"] for f in factors), reverse=True)

    # A subject the model never saw is scored, not refused.
    unseen = X[:1].copy()
    unseen[0, FEATURES.index("subject")] = "Astrophysics"
    assert 0 < t.model.predict(unseen)[0] < 1

    with pytest.raises(NotEnoughData, match="at least 100000"):
        train(table, poor_below=3, threshold=0.4, c_grid=[1.0], min_sessions=100000, min_poor=10)


# --- rules ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Your first session is coming up ({probability})",
                                  "A 60% chance this goes badly: prepare", "High risk session ahead"])
def test_reminder_text_may_not_carry_risk(tmp_path: Path, text: str) -> None:
    source = (RULES_DIR / "first_session.yaml").read_text()
    old = 'message_subject: "Your first session with a new student is coming up"'
    assert old in source
    path = tmp_path / "first_session.yaml"
    path.write_text(source.replace(old, f"message_subject: {text!r}"))
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "message_subject" in s)
    with pytest.raises(RulesError) as err:
        load_first_session_rules(path)
    assert f"{path}:{line}" in str(err.value) and "reminder.message_subject" in str(err.value)
    assert "tutors never see risk" in str(err.value)


def test_threshold_must_be_a_probability(tmp_path: Path) -> None:
    source = (RULES_DIR / "first_session.yaml").read_text()
    path = tmp_path / "first_session.yaml"
    path.write_text(source.replace("alert_threshold: 0.40", "alert_threshold: 1.5"))
    with pytest.raises(RulesError, match="alert_threshold"):
        load_first_session_rules(path)
