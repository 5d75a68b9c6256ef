"""PRD Appendix C's sample journey (At-Risk -> Churned), replayed day by day through the ingestion API and
evaluated the way the system does, on SQLite and PostgreSQL.

Each day: that day's logins, messages, reschedule requests, sessions and feedback are posted in the order they
happen; if sessions or feedback arrived, the per-session evaluation runs as of the day's last activity (what the
tutor's workflow does when signalled); then the daily rollup runs as of the next midnight UTC (what re-evaluates
a tutor who has stopped teaching). Acceptance: the high-reschedule and no-show flags are raised by day 55, the
churn score reaches Critical by day 68, it is Low before day 40, and the tutor goes inactive after 14 days
without sessions (day 75).

Population of one: tier percentiles are degenerate, so tiers are not asserted.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import get_engine, session_scope
from domain.evaluation.batch import evaluate_population
from domain.evaluation.service import evaluate_tutor
from domain.scoring.models import ChurnPrediction
from domain.students.models import Student
from domain.tutors.models import Tutor
from rules.scoring import load_scoring_rules
from tests.auth import as_role
from tests.journeys import appendix_c as jc

RULES = load_scoring_rules(Path(__file__).resolve().parents[2] / "rules" / "scoring.yaml")
BOTH_FLAGS = {"high_reschedule", "no_show_risk"}


@dataclass(frozen=True)
class Point:
    """One stored evaluation: the churn_predictions row it wrote, read back."""

    day: int  # the journey day whose facts it saw (a rollup at midnight sees the day that just ended)
    stage: str  # "session" (per-session evaluation) | "rollup" (daily rollup at the next midnight)
    as_of: datetime
    churn_score: float
    risk_level: str
    flags: dict[str, dict[str, Any]]
    components: dict[str, float]
    status: str

    def line(self) -> str:
        top = sorted(self.components.items(), key=lambda kv: -kv[1])[:3]
        comps = ", ".join(f"{k}={v:g}" for k, v in top if v > 0)
        return (f"day {self.day:>2} {self.stage:<7} {self.as_of:%m-%d %H:%M} {self.churn_score:>5.1f} "
                f"{self.risk_level:<8} {self.status:<8} [{','.join(sorted(self.flags))}] {comps}")


def trajectory(points: list[Point]) -> str:
    head = "day    stage   as_of        score risk     status   [flags] top weighted components"
    return "\n".join([head, *(p.line() for p in points)])


def _seed(engine: Engine) -> None:
    with session_scope(engine) as db:
        db.add(Tutor(**jc.TUTOR))
        for s in jc.student_records():
            db.add(Student(**s))


def _read(engine: Engine, *, day: int, stage: str, prediction_day: datetime) -> Point:
    with session_scope(engine) as db:
        row = db.execute(select(ChurnPrediction).where(
            ChurnPrediction.tutor_id == jc.TUTOR_ID,
            ChurnPrediction.prediction_date == prediction_day.date())).scalar_one()
        status = db.get(Tutor, jc.TUTOR_ID).status
    components = {k: v["contribution"] for k, v in row.contributing_factors.items() if not k.startswith("pattern_")}
    return Point(day=day, stage=stage, as_of=row.as_of, churn_score=row.churn_score, risk_level=row.risk_level, flags={f["name"]: f for f in row.flags},
                 components=components, status=status)


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    # As in test_ingestion_api: Temporal deliberately unreachable, ingestion stores and leaves sessions pending;
    # this test runs the evaluations itself, as of the journey's own clock.
    app = create_app(Settings(database_url=db_url, temporal_address="127.0.0.1:1"))
    with TestClient(app) as client:
        client.headers.update(as_role(get_engine(db_url), "admin"))
        yield client


def replay(api: TestClient, engine: Engine) -> list[Point]:
    points: list[Point] = []
    for jd in jc.journey():
        for r in jd.records:
            resp = api.post(f"/api/v1/{r.endpoint}", json=r.body)
            assert resp.status_code == 201, (jd.day, r.endpoint, r.body, resp.text)
        if jd.triggers_evaluation:
            with session_scope(engine) as db:
                evaluate_tutor(db, jc.TUTOR_ID, as_of=jd.last_activity, rules=RULES)
            points.append(_read(engine, day=jd.day, stage="session", prediction_day=jd.last_activity))
        with session_scope(engine) as db:
            evaluate_population(db, as_of=jd.next_midnight, rules=RULES)
        points.append(_read(engine, day=jd.day, stage="rollup", prediction_day=jd.next_midnight))
    return points


def test_journey_matches_appendix_c() -> None:
    """The generator says what Appendix C says: per-period session counts and averages, reschedules, no-shows."""
    sessions = jc.sessions()

    def period(a: int, b: int) -> list[dict[str, Any]]:
        return [s for s in sessions if a <= jc.day_of(datetime.fromisoformat(s["scheduled_start"])) <= b]

    def held(ss: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in ss if not s["no_show"]]

    def avg(ss: list[dict[str, Any]]) -> float:
        return round(sum(s["student_rating"] for s in held(ss)) / len(held(ss)), 2)

    day1 = period(1, 1)
    assert len(day1) == 3 and avg(day1) == 4.8 and all(s["session_number"] == 1 for s in day1)
    assert (len(held(period(1, 15))), avg(period(1, 15))) == (12, 4.6)
    assert (len(held(period(16, 30))), avg(period(16, 30))) == (18, 4.5)
    assert (len(held(period(31, 45))), avg(period(31, 45))) == (14, 4.2)
    assert sum(s["tutor_initiated_reschedule"] for s in period(1, 45)) == 2
    assert (len(held(period(46, 60))), avg(period(46, 60))) == (8, 3.8)
    no_show_days = sorted(jc.day_of(datetime.fromisoformat(s["scheduled_start"])) for s in sessions if s["no_show"])
    assert no_show_days[0] == jc.FIRST_NO_SHOW_DAY and len(no_show_days) > 1
    week = period(jc.FLAG_DAY - 6, jc.FLAG_DAY)  # the 7 days up to day 55
    resched = sum(s["tutor_initiated_reschedule"] for s in week)
    assert resched > 3 and resched / len(week) > 0.15
    assert max(jc.day_of(datetime.fromisoformat(s["scheduled_start"])) for s in sessions) == jc.LAST_SESSION_DAY
    logins = [jc.day_of(datetime.fromisoformat(r.body["event_timestamp"])) for d in jc.journey() for r in d.records
              if r.endpoint == "events" and r.body["event_type"] == "login"]
    assert max(logins) == jc.LAST_LOGIN_DAY
    firsts = [s for s in sessions if s["session_number"] == 1]
    assert len(firsts) == len(jc.STUDENTS)


def test_appendix_c_replayed_through_ingestion(api: TestClient, db_url: str) -> None:
    engine = get_engine(db_url)
    _seed(engine)
    points = replay(api, engine)
    table = trajectory(points)
    print("\n" + table)

    # Low while the tutor is doing well (every evaluation of days 1-39).
    early = [p for p in points if p.day < 40]
    assert early and all(p.risk_level == "Low" for p in early), table

    # Both flags by day 55, in one stored row, with evidence pointing at the journey's reschedules and no-shows.
    flagged = [p for p in points if BOTH_FLAGS <= set(p.flags)]
    assert flagged and flagged[0].day <= jc.FLAG_DAY, table
    first = flagged[0]
    resched = first.flags["high_reschedule"]
    assert set(resched["evidence"]["session_ids"]) <= jc.rescheduled_ids(), table
    assert resched["evidence"]["count"] > 3 and resched["evidence"]["rate"] > 0.15, resched
    by_id = {s["session_id"]: datetime.fromisoformat(s["scheduled_start"]) for s in jc.sessions()}
    resched_at = datetime.fromisoformat(resched["triggered_at"])
    assert resched_at in {by_id[i] for i in jc.rescheduled_ids()} and jc.day_of(resched_at) <= jc.FLAG_DAY, resched
    no_show = first.flags["no_show_risk"]
    assert no_show["evidence"]["session_ids"] and set(no_show["evidence"]["session_ids"]) <= jc.no_show_ids(), no_show
    assert datetime.fromisoformat(no_show["triggered_at"]) == min(by_id[i] for i in no_show["evidence"]["session_ids"])
    assert all(p.day >= jc.FIRST_NO_SHOW_DAY for p in points if "no_show_risk" in p.flags), table

    # Critical (>= 76) by day 68, and still Critical at day 68's rollup (last login 6 days before).
    critical = [p for p in points if p.risk_level == "Critical"]
    assert critical and critical[0].day <= jc.CRITICAL_BY_DAY and critical[0].churn_score >= 76, table
    day68 = next(p for p in points if p.day == jc.CRITICAL_BY_DAY and p.stage == "rollup")
    assert day68.as_of == jc.day_start(jc.CRITICAL_BY_DAY + 1) and day68.risk_level == "Critical", table

    # Inactive once 14 days have passed without a session (the day-75 rollup), not before.
    rollups = {p.day: p for p in points if p.stage == "rollup"}
    assert all(rollups[d].status == "active" for d in range(1, jc.INACTIVE_DAY)), table
    assert rollups[jc.INACTIVE_DAY].status == "inactive", table
