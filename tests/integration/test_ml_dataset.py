"""Churn labels for feature rows (ml/labels.py): from the simulation's truth, and from the PRD inactivity
definition when there is no truth — horizon boundaries, censoring, rows after churn, and the temporal-split
rule (a row trains only if its whole label window has closed)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import get_engine, session_scope
from core.migrate import upgrade
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor
from ml.features import FEATURES, FeatureFrame, build_features
from ml.labels import ChurnTruth, inactivity_labels, labels, truth_labels
from synth.truth import churn_truth
from tests.factories import seed_people

D0 = date(2026, 9, 1)
H = (1, 7, 30, 90)


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def frame(*rows: tuple[str, date]) -> FeatureFrame:
    return FeatureFrame(tutor_ids=np.array([t for t, _ in rows], dtype=object),
                        days=np.array([np.datetime64(d, "D") for _, d in rows]),
                        X=np.zeros((len(rows), len(FEATURES)), dtype=np.float32))


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def y_of(lab, i: int) -> list[float | None]:
    return [None if not k else float(v) for v, k in zip(lab.y[i], lab.known[i], strict=True)]


# --- truth ---------------------------------------------------------------------------------------------------

def test_truth_labels_horizon_boundaries_and_censoring() -> None:
    churned = midnight(day(10)) + timedelta(hours=12)
    truth = ChurnTruth(churned_at={"a": churned, "b": None, "c": midnight(day(17))},
                       observed_until=midnight(day(30)))
    rows = frame(("a", day(9)), ("a", day(10)), ("a", day(11)), ("b", day(25)), ("b", day(5)), ("c", day(10)),
                 ("a", day(3)))
    lab = truth_labels(rows, truth, H)
    assert lab.source == "truth"
    assert y_of(lab, 0) == [0, 1, 1, 1]  # churn is 1.5 days after as-of
    assert y_of(lab, 1) == [1, 1, 1, 1]  # as_of <= churned_at < as_of + 1 day
    assert list(lab.at_risk) == [True, True, False, True, True, True, True]
    assert y_of(lab, 3) == [0, None, None, None]  # no churn seen, but truth ends on day 30
    assert y_of(lab, 4) == [0, 0, None, None]
    assert y_of(lab, 5) == [0, 0, 1, 1]  # churned exactly at as_of + 7 days: outside the 7-day window
    assert y_of(lab, 6) == [0, 0, 1, 1]  # a recorded churn is known even beyond what "no churn" can be
    assert lab.label_end[0] == np.datetime64(midnight(day(99)).replace(tzinfo=None), "s")
    split = midnight(day(100))
    assert list(lab.trainable(split, 30)) == [True, True, False, False, False, True, True]


# --- inactivity ----------------------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'labels.db'}"
    upgrade(url)
    eng = get_engine(url)
    seed_people(eng, tutors=5, students=1, onboarded=day(0))
    yield eng
    eng.dispose()


def sessions_on(engine: Engine, tutor: str, days: list[int]) -> None:
    with session_scope(engine) as db:
        for n in days:
            db.add(TutoringSession(session_id=f"{tutor}-{n}", tutor_id=tutor, student_id="student_1", session_number=1,
                                   scheduled_start=midnight(day(n)) + timedelta(hours=15), duration_minutes=60,
                                   subject="Mathematics"))


def test_inactivity_labels(engine: Engine) -> None:
    sessions_on(engine, "tutor_1", list(range(0, 10)))  # stops after day 9: churned on day 10
    sessions_on(engine, "tutor_2", [*range(0, 10), 24, 25])  # 14 empty days (10..23): churned on day 10, back on 24
    sessions_on(engine, "tutor_3", [*range(0, 10), 23, 40])  # 13 empty days (10..22): no churn; then 16 empty
    sessions_on(engine, "tutor_4", [*range(0, 10), 50])  # last session day 50, data ends day 60: censored
    until = midnight(day(60)) + timedelta(hours=6)
    rows = frame(("tutor_1", day(9)), ("tutor_1", day(10)), ("tutor_1", day(11)), ("tutor_1", day(3)),
                 ("tutor_2", day(9)), ("tutor_2", day(24)), ("tutor_2", day(25)),
                 ("tutor_3", day(9)), ("tutor_3", day(24)),
                 ("tutor_4", day(45)), ("tutor_4", day(30)), ("tutor_4", day(50)))
    with Session(engine) as db:
        lab = inactivity_labels(db, rows, H, until=until)
    assert lab.source == "inactivity"
    assert y_of(lab, 0) == [0, 1, 1, 1]
    assert y_of(lab, 1) == [1, 1, 1, 1]
    assert not lab.at_risk[2]  # churned on day 10, no session since
    assert y_of(lab, 3) == [0, 0, 1, 1]  # day 10 is 7 days after day 3: outside the 7-day window
    assert y_of(lab, 4)[:2] == [0, 1] and not lab.at_risk[5]  # the 14-day gap (days 10..23) is a churn
    # As of day 24 the return (that afternoon) is not seen yet; as of day 25 it is: at risk again, and the
    # last session (day 25) is followed by 14 empty, observed days: churned again on day 26.
    assert lab.at_risk[6] and y_of(lab, 6)[:2] == [0, 1]
    assert y_of(lab, 7)[:2] == [0, 0]  # a 13-day gap (days 10..22) is not a churn ...
    assert y_of(lab, 8)[:3] == [1, 1, 1]  # ... but days 24..39 are empty: churned on day 24, the as-of day
    # tutor_4: data ends on day 60 (partly observed), the last session is day 50, so a churn on day 51 needs
    # days 51..64 observed: every window holding day 51 is unknown.
    assert y_of(lab, 9) == [0, None, None, None]  # 45 + 1 + 13 <= 60 decides the 1-day window only
    assert y_of(lab, 10)[:2] == [0, 0] and y_of(lab, 10)[2] is None
    assert y_of(lab, 11) == [None, None, None, None]
    assert np.isnan(lab.y[11]).all()
    assert lab.label_end[0] == np.datetime64(midnight(day(9 + 90 + 13)).replace(tzinfo=None), "s")


def test_labels_picks_truth_or_inactivity(engine: Engine) -> None:
    sessions_on(engine, "tutor_1", list(range(0, 10)))
    rows = frame(("tutor_1", day(9)), ("tutor_2", day(9)))
    until = midnight(day(40))
    with Session(engine) as db:
        assert labels(db, rows, H).source == "inactivity"
        truth = ChurnTruth(churned_at={"tutor_1": None, "tutor_2": None}, observed_until=until)
        assert labels(db, rows, H, truth=truth).source == "truth"
        assert labels(db, rows, H, truth=ChurnTruth({"other": None}, until)).source == "inactivity"
        with pytest.raises(ValueError, match="mix"):
            labels(db, rows, H, truth=ChurnTruth({"tutor_1": None}, until))


# --- the engine world: truth loaded by the caller (tests may read it; ml/ may not) ----------------------------

def load_truth(db: Session) -> ChurnTruth:
    return churn_truth(db)


def test_engine_world_labels(tmp_path: Path) -> None:
    from tests.unit.engine_fixtures import build_world

    w = build_world(tmp_path)
    with Session(w.engine) as db:
        rows = build_features(db, start=w.epoch.date() + timedelta(days=1), end=w.end.date())
        truth = load_truth(db)
        by_truth = labels(db, rows, H, truth=truth)
        by_inactivity = labels(db, rows, H)
        n_tutors = db.execute(select(Tutor.tutor_id)).all()
    w.engine.dispose()
    assert by_truth.source == "truth" and by_inactivity.source == "inactivity"
    assert len(set(rows.tutor_ids)) == len(n_tutors)
    j = H.index(1)
    # Everything the 1-day truth labels decide lies inside the simulated span.
    assert by_truth.known[:, j][rows.days < np.datetime64(w.end.date(), "D")].all()
    churned = [t for t, c in truth.churned_at.items() if c is not None]
    for t in churned:  # no row of a churned tutor after the churn is at risk
        after = (rows.tutor_ids == t) & (rows.days.astype("datetime64[s]") > np.datetime64(
            truth.churned_at[t].replace(tzinfo=None), "s"))
        assert not by_truth.at_risk[after].any()
