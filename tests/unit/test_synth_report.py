"""The realism report: hand-built databases with known counts, so every figure is checked against arithmetic."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from scipy import stats
from sqlalchemy import insert
from sqlmodel import SQLModel

import core.config
import synth.truth  # noqa: F401  (the ground-truth tables, which domain.registry leaves out)
import domain.registry  # noqa: F401  (registers every table)
from cli.synth_report import add_parser, run
from core.db import get_engine
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from synth.models import SynthWorld
from synth.report import build_report
from synth.report_charts import draw_all
from synth.truth import TruthTutor

MON = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
LONG_AGO = date(2025, 1, 1)


class Db:
    """Rows added by hand, written in one go by build()."""

    def __init__(self, tmp_path: Path, url: str | None = None) -> None:
        self.url = url or f"sqlite:///{tmp_path / 'report.db'}"
        self.rows: dict[type, list[dict]] = {Tutor: [], TutoringSession: [], StudentFeedback: [], TutorEvent: [],
                                             TruthTutor: []}
        self.n = 0

    def tutor(self, tid: str, onboarded: date = LONG_AGO, archetype: str | None = "steady") -> str:
        self.rows[Tutor].append(Tutor(tutor_id=tid, name=tid, email=f"{tid}@x.test", onboarding_date=onboarded,
                                      behavioral_archetype=archetype).model_dump())
        return tid

    def session(self, tid: str, at: datetime, *, number: int = 2, no_show: bool = False, rating: float | None = 4.0,
                flagged: bool = False, feedback: int | None = None) -> str:
        self.n += 1
        sid = f"s{self.n}"
        self.rows[TutoringSession].append(TutoringSession(
            session_id=sid, tutor_id=tid, student_id="st", session_number=number, scheduled_start=at,
            duration_minutes=60, subject="Mathematics", no_show=no_show, tutor_initiated_reschedule=flagged,
            student_rating=None if no_show else rating).model_dump())
        if feedback is not None:
            self.rows[StudentFeedback].append(StudentFeedback(
                feedback_id=f"f{sid}", session_id=sid, student_id="st", tutor_id=tid, overall_rating=feedback,
                is_first_session=number == 1, submitted_at=at + timedelta(hours=2)).model_dump())
        return sid

    def event(self, tid: str, at: datetime, tutor_initiated: bool) -> None:
        self.n += 1
        self.rows[TutorEvent].append(TutorEvent(
            event_id=f"e{self.n}", tutor_id=tid, event_type="reschedule_request", event_timestamp=at,
            event_metadata={"tutor_initiated": tutor_initiated}).model_dump(by_alias=False))

    def truth(self, tid: str, churned_at: datetime | None = None, cause: str | None = None,
              archetype: str = "steady") -> None:
        self.rows[TruthTutor].append(TruthTutor(tutor_id=tid, world_id=1, initial_archetype=archetype,
                                                onboarded_at=datetime(2025, 1, 1, tzinfo=UTC), churned_at=churned_at,
                                                churn_cause=cause).model_dump())

    def build(self):  # noqa: ANN201
        engine = get_engine(self.url)
        SQLModel.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(Student), [Student(student_id="st", name="S", age=15, grade_level="10").model_dump()])
            conn.execute(insert(SynthWorld), [SynthWorld(world_id=1, seed=1, epoch=MON, backfill_end=MON, n_tutors=1,
                                                         sessions_per_day=1).model_dump()])
            for table, rows in self.rows.items():
                if table is TutorEvent:  # the ORM attribute is event_metadata, the column "metadata"
                    rows = [{**r, "metadata": r.pop("event_metadata")} for r in rows]
                if rows:
                    conn.execute(insert(table.__table__), rows)
        return engine

    def report(self, days: int | None = None):  # noqa: ANN201
        return build_report(self.build(), days)[0]


def by_name(report, name: str):  # noqa: ANN001, ANN201
    return next(c for c in report.checks if c.name == name)


@pytest.mark.parametrize(("per_day", "passes"), [((2900, 3000, 3100), True), ((2600, 2700, 2650), False)])
def test_sessions_per_day_counts_only_full_days(tmp_path: Path, per_day: tuple[int, ...], passes: bool) -> None:
    db = Db(tmp_path)
    t = db.tutor("t1")
    db.session(t, MON + timedelta(hours=12))  # the first day is partial: left out
    for k, count in enumerate(per_day, start=1):
        for i in range(count):
            db.session(t, MON + timedelta(days=k, seconds=20 * i))
    db.session(t, MON + timedelta(days=4, hours=6))  # so is the last
    check = by_name(db.report(), "sessions per day")
    assert check.value == pytest.approx(sum(per_day) / 3)
    assert check.details["days"] == 3
    assert check.passed is passes


@pytest.mark.parametrize(("low_share", "passes"), [(2, True), (3, False)])
def test_first_session_failure_share(tmp_path: Path, low_share: int, passes: bool) -> None:
    db = Db(tmp_path)
    t = db.tutor("t1")
    at = MON + timedelta(hours=9)
    db.session(t, at, number=1, rating=4.5, feedback=2)  # the feedback's rating wins: a failure
    db.session(t, at, number=1, rating=2.9)  # no feedback: the session's quick rating, < 3
    db.session(t, at, number=1, rating=1.0, feedback=4)  # feedback says 4: not a failure
    for k in range(5):
        db.session(t, at, number=1, rating=2.0 if k < low_share - 2 else 4.0)
    db.session(t, at, number=1, no_show=True)  # unrated: left out
    db.session(t, at, number=2, rating=1.0)  # not a first session
    check = by_name(db.report(), "first-session failure")
    assert (check.details["first_sessions_rated"], check.details["rated_below_3"]) == (8, low_share)
    assert check.value == pytest.approx(low_share / 8)
    assert check.passed is passes


@pytest.mark.parametrize(("by_tutor", "passes"), [(982, True), (950, False)])
def test_tutor_initiated_reschedule_share(tmp_path: Path, by_tutor: int, passes: bool) -> None:
    db = Db(tmp_path)
    t = db.tutor("t1")
    db.session(t, MON)
    db.session(t, MON + timedelta(days=3))
    for i in range(1000):
        db.event(t, MON + timedelta(minutes=i), tutor_initiated=i < by_tutor)
    db.event(t, MON + timedelta(days=5), tutor_initiated=False)  # after the last session: outside the window
    check = by_name(db.report(), "tutor-initiated reschedules")
    assert check.details["events"] == 1000
    assert check.value == pytest.approx(by_tutor / 1000)
    assert check.passed is passes


def test_reschedule_share_without_events_says_so(tmp_path: Path) -> None:
    db = Db(tmp_path)
    t = db.tutor("t1")
    db.session(t, MON, flagged=True)
    check = by_name(db.report(), "tutor-initiated reschedules")
    assert check.value is None and not check.passed
    assert "no reschedule_request events" in check.how and "1 flagged" in check.how


def _noshow_world(db: Db, mon_am: int, mon_pm: int, other_am: int, other_pm: int) -> None:
    """200 sessions per weekday at 08:00 and at 16:00, with the given no-shows in each."""
    t = db.tutor("t1")
    for day in range(7):
        for hour, shows in ((8, mon_am if day == 0 else other_am), (16, mon_pm if day == 0 else other_pm)):
            for i in range(200):
                db.session(t, MON + timedelta(days=day, hours=hour, seconds=i), no_show=i < shows)


def test_noshow_clustering_detected(tmp_path: Path) -> None:
    db = Db(tmp_path)
    _noshow_world(db, mon_am=30, mon_pm=10, other_am=10, other_pm=4)
    check = by_name(db.report(), "no-show clustering")
    assert check.details["monday"] == pytest.approx(40 / 400)
    assert check.details["other_days_mean"] == pytest.approx(14 / 400)
    assert check.details["morning"] == pytest.approx(90 / 1400)
    assert check.details["afternoon"] == pytest.approx(34 / 1400)
    assert check.passed and check.value < 0.01


def test_noshow_clustering_fails_without_clustering(tmp_path: Path) -> None:
    db = Db(tmp_path)
    _noshow_world(db, mon_am=8, mon_pm=8, other_am=8, other_pm=8)
    check = by_name(db.report(), "no-show clustering")
    assert check.details["monday"] == pytest.approx(check.details["other_days_mean"])
    assert not check.passed


@pytest.mark.parametrize(("first_week", "passes"), [(210, True), (150, False)])
def test_active_tutors_per_week(tmp_path: Path, first_week: int, passes: bool) -> None:
    db = Db(tmp_path)
    for i in range(250):
        t = db.tutor(f"t{i:03d}")
        if i < first_week:
            db.session(t, MON + timedelta(days=1, hours=10))  # week 1: days 1-7
        if i < 220:
            db.session(t, MON + timedelta(days=9, hours=10))  # week 2: days 8-14
    db.session("t000", MON + timedelta(hours=10))  # partial first day
    db.session("t000", MON + timedelta(days=15, hours=1))  # partial last day
    check = by_name(db.report(), "active tutors")
    assert check.details["per_week"] == [first_week, 220]
    assert check.value == 220
    assert check.passed is passes


@pytest.mark.parametrize(("high", "passes"), [(6, True), (8, False)])
def test_archetype_shares_of_tutors_present_at_start(tmp_path: Path, high: int, passes: bool) -> None:
    db = Db(tmp_path)
    mix = {"high_performer": high, "at_risk": 4, "new": 5, "steady": 10 - high, "churner": 1}
    i = 0
    for kind, count in mix.items():
        for _ in range(count):
            db.session(db.tutor(f"t{i:02d}", archetype=kind), MON + timedelta(days=1))
            i += 1
    db.tutor("late1", onboarded=date(2026, 11, 5), archetype="new")  # after the window start: reported apart
    db.tutor("late2", onboarded=date(2026, 11, 5), archetype=None)
    db.truth("late2", archetype="new")  # the truth table fills a missing archetype
    check = by_name(db.report(), "archetype shares")
    assert check.details["shares_pct"]["high_performer"] == pytest.approx(100 * high / 20)
    assert check.details["tutors_at_start"] == 20
    assert check.details["onboarded_later_by_archetype"] == {"new": 2}
    assert check.passed is passes


def _churn_world(db: Db, resignations: int) -> int:
    """100 tutors over a window of exactly two months; churns half-way through. Returns the churn count."""
    end = MON + timedelta(days=2 * 30.4375)
    churns = max(6, resignations)
    for i in range(100):
        t = db.tutor(f"t{i:03d}")
        db.session(t, MON)
        db.session(t, end)
        churned = i < churns
        cause = "resignation" if i < resignations else "inactivity"
        db.truth(t, MON + timedelta(days=30.4375) if churned else None, cause if churned else None)
    db.truth(db.tutor("gone"), MON - timedelta(days=3), "inactivity")  # churned before the window
    return churns


# 2 resignations in 194 tutor-months (1.0%) sit in the band; 0 are still consistent with 1%/month (the exact
# upper bound is 1.9%); 25 (15%/month, CI 9-21%) are not.
@pytest.mark.parametrize(("resignations", "passes"), [(2, True), (0, True), (25, False)])
def test_churn_rates_per_tutor_month(tmp_path: Path, resignations: int, passes: bool) -> None:
    db = Db(tmp_path)
    churns = _churn_world(db, resignations)
    report = db.report()
    resign, total = by_name(report, "monthly resignation churn"), by_name(report, "monthly churn (all causes)")
    months = (100 - churns) * 2 + churns * 1
    assert total.details["tutor_months"] == pytest.approx(months)
    assert total.value == pytest.approx(churns / months)
    assert resign.value == pytest.approx(resignations / months)
    low, high = resign.details["resignation_ci95"]
    assert low <= resign.value <= high
    assert high == pytest.approx(stats.chi2.ppf(0.975, 2 * resignations + 2) / 2 / months)
    assert resign.passed is passes


def test_churn_checks_fail_without_ground_truth(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.session(db.tutor("t1"), MON)
    report = db.report()
    for name in ("monthly resignation churn", "monthly churn (all causes)", "no-shows precede churn",
                 "reschedules precede churn"):
        assert not by_name(report, name).passed and "synth_truth_tutors is empty" in by_name(report, name).how


@pytest.mark.parametrize(("sign", "passes"), [(1, True), (-1, False)])
def test_rating_tenure_correlation(tmp_path: Path, sign: int, passes: bool) -> None:
    db = Db(tmp_path)
    for i in range(20):  # onboarded i*10 days before the session: tenure rises with i, rating with sign*i
        t = db.tutor(f"t{i:02d}", onboarded=(MON - timedelta(days=10 * i)).date())
        db.session(t, MON + timedelta(hours=9), number=1, rating=3.0 + sign * i / 10)
    check = by_name(db.report(), "first-session rating vs tenure")
    assert check.value == pytest.approx(sign * 1.0)
    assert check.passed is passes


def test_signals_precede_churn(tmp_path: Path, db_url: str) -> None:
    """On both databases (the conftest's migrated SQLite and PostgreSQL): the SQL must mean the same on each."""
    db = Db(tmp_path, db_url)
    churn_at = MON + timedelta(days=28)
    for i in range(4):  # churned: 3 of 4 had a no-show in their last 30 days; t0 and t1 rescheduled 4x in week 1
        t = db.tutor(f"c{i}")
        db.truth(t, churn_at, "inactivity")
        db.session(t, MON + timedelta(days=2), no_show=i < 3)
        db.session(t, MON + timedelta(days=9))
        for k in range(4 if i < 2 else 0):
            db.event(t, MON + timedelta(days=1, hours=k), tutor_initiated=True)
    for i in range(10):  # stayed: 1 of 10 had a no-show; none rescheduled much
        t = db.tutor(f"s{i}")
        db.truth(t)
        db.session(t, MON + timedelta(days=2))
        db.session(t, MON + timedelta(days=9), no_show=i == 0)  # inside their comparison window (days 5-35)
        db.event(t, MON + timedelta(days=1), tutor_initiated=True)
    db.session("s0", MON)
    db.session("s0", MON + timedelta(days=35))  # the window runs past the churns
    report = db.report()
    noshow = by_name(report, "no-shows precede churn")
    assert (noshow.details["churned_share"], noshow.details["non_churned_share"]) == (0.75, 0.1)
    assert noshow.passed
    assert noshow.details["churned_noshow_rate"] == pytest.approx(3 / 8)  # 8 sessions before day 28, 3 missed
    assert noshow.details["non_churned_noshow_rate"] == pytest.approx(1 / 10)  # s0's day-35 session is the end
    resched = by_name(report, "reschedules precede churn")
    # Five whole weeks (days 0-34); tutor-weeks with a session: 14 in week 1, 14 in week 2.
    assert resched.details["flagged_tutor_weeks"] == 2 and resched.details["other_tutor_weeks"] == 26
    assert resched.details["flagged_rate"] == 1.0
    assert resched.details["other_rate"] == pytest.approx(6 / 26)
    assert resched.passed
    assert by_name(report, "first-session failure").value is None  # no first sessions at all
    assert by_name(report, "sessions per day").value == pytest.approx(29 / 35)  # 29 sessions before day 35


def test_charts_and_cli_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Db(tmp_path)
    _noshow_world(db, mon_am=30, mon_pm=10, other_am=10, other_pm=4)
    db.truth("t1", MON + timedelta(days=3), "resignation")
    engine = db.build()
    report, data = build_report(engine)
    charts = draw_all(data, tmp_path / "charts")
    assert len(charts) == 5
    for path in charts:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Path(path).stat().st_size > 2000

    monkeypatch.setenv("DATABASE_URL", db.url)
    core.config.get_settings.cache_clear()
    try:
        import argparse
        parser = argparse.ArgumentParser()
        add_parser(parser.add_subparsers(dest="synth_command"))
        out = tmp_path / "out"
        args = parser.parse_args(["report", "--out", str(out), "--json"])
        assert args.func is run
        assert run(args) == 1  # 2,800 sessions in a week are not 3,000 a day
    finally:
        core.config.get_settings.cache_clear()
    saved = json.loads((out / "report.json").read_text())
    assert saved["passed"] is False and len(saved["checks"]) == len(report.checks) >= 11
    assert "| no-show clustering |" in (out / "report.md").read_text()
    assert len(list(out.glob("*.png"))) == 5


def test_report_runs_on_a_synthetic_backfill(tmp_path: Path) -> None:
    from synth.backfill import backfill

    engine = get_engine(f"sqlite:///{tmp_path / 'backfill.db'}")
    SQLModel.metadata.create_all(engine)
    backfill(engine, days=7, seed=1, n_tutors=60, sessions_per_day=600, end=MON + timedelta(days=7),
             progress=lambda _m: None)
    report, data = build_report(engine)
    assert len(report.checks) == 11 and {c.name for c in report.checks} >= {"sessions per day", "no-show clustering"}
    assert by_name(report, "sessions per day").value is not None  # 600/day: measured, and far from 3,000
    assert not by_name(report, "sessions per day").passed
    assert len(draw_all(data, tmp_path / "charts")) == 5
