"""Home, queue and the interventions/KPI API against a seeded SQLite database, with Temporal unreachable."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

import domain.registry  # noqa: F401 - every table on the metadata before create_all
from api.main import create_app
from core.config import Settings
from core.db import get_engine
from domain.feedback.models import StudentFeedback
from domain.interventions.models import Intervention, InterventionStatus
from domain.scoring.models import ChurnPrediction, RiskLevel
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor, TutorStatus

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def _tutor(tid: str, name: str, onboarded_days_ago: int, status: TutorStatus = TutorStatus.active) -> Tutor:
    return Tutor(tutor_id=tid, name=name, email=f"{tid}@example.com",
                 onboarding_date=(NOW - onboarded_days_ago * DAY).date(), status=status)


def _session(sid: str, tid: str, number: int, days_ago: float, *, rating: float | None = None,
             no_show: bool = False) -> TutoringSession:
    start = NOW - days_ago * DAY
    return TutoringSession(session_id=sid, tutor_id=tid, student_id="s1", session_number=number, scheduled_start=start,
                           actual_start=None if no_show else start, duration_minutes=0 if no_show else 60,
                           subject="Algebra", no_show=no_show, student_rating=rating)


def _prediction(tid: str, days_ago: int, score: float, level: RiskLevel, **extra) -> ChurnPrediction:
    return ChurnPrediction(tutor_id=tid, prediction_date=(NOW - days_ago * DAY).date(), as_of=NOW - days_ago * DAY,
                           churn_score=score, risk_level=level, model_version="test-1", **extra)


def _task(iid: str, tid: str, kind_: str, *, status=InterventionStatus.pending, due=None, **extra) -> Intervention:
    return Intervention(intervention_id=iid, tutor_id=tid, intervention_type=extra.pop("type_", "retention_interview"),
                        kind=kind_, trigger_reason=extra.pop("reason", "Churn score 82 (Critical)"),
                        recommended_date=NOW - DAY, owner_role="people_ops", status=status, due_date=due,
                        rules_version="v1", rules_hash="h", **extra)


def _seed(db: Session) -> None:
    db.add_all([
        # Active: t1, t2, t3 (t3 joined 10 days ago). Before the window and not churned: t1, t2 -> change +1.
        _tutor("t1", "Jane Doe", 100), _tutor("t2", "John Smith", 100), _tutor("t3", "Amy Lee", 10),
        _tutor("t4", "Old Churner", 200, TutorStatus.churned),
        Student(student_id="s1", name="Alex"),
    ])
    db.flush()
    db.add_all([
        # Last 30 days: 8 sessions, 2 no-shows -> 25.0%. Rated first sessions s1 (feedback 2 beats quick 5),
        # s2 (4), s4 (feedback 5); s3 unrated -> 2 of 3 -> 67%.
        _session("s1", "t1", 1, 2, rating=5), _session("s2", "t2", 1, 3, rating=4), _session("s3", "t3", 1, 4),
        _session("s4", "t1", 1, 5), _session("s5", "t1", 2, 6, no_show=True), _session("s6", "t2", 2, 7, no_show=True),
        _session("s7", "t3", 3, 8, rating=3), _session("s8", "t1", 3, 9),
        # Previous 30 days: 5 sessions, 1 no-show -> 20%; first sessions 2 of 2 -> 100%.
        _session("p1", "t1", 1, 40, rating=5), _session("p2", "t2", 1, 45, rating=5),
        _session("p3", "t1", 2, 50, no_show=True), _session("p4", "t2", 2, 55), _session("p5", "t4", 4, 35, rating=3),
        # Outside both windows: in the future, and 70 days ago.
        _session("f1", "t1", 4, -1, no_show=True), _session("o1", "t1", 1, 70, rating=1, no_show=True),
    ])
    db.flush()
    db.add_all([
        StudentFeedback(feedback_id="fb1", session_id="s1", student_id="s1", tutor_id="t1", overall_rating=2,
                        is_first_session=True, submitted_at=NOW - 2 * DAY),
        StudentFeedback(feedback_id="fb4", session_id="s4", student_id="s1", tutor_id="t1", overall_rating=5,
                        is_first_session=True, submitted_at=NOW - 5 * DAY),
        _prediction("t1", 40, 45, RiskLevel.medium),
        _prediction("t1", 1, 82, RiskLevel.critical,
                    flags=[{"name": "no_show_risk", "summary": "3 no-shows in 7 days", "evidence": {"session_ids": ["s9"]}}],
                    contributing_factors={"engagement_decline": {"score": 70, "contribution": 21.0},
                                          "pattern_no_show_risk": {"score": 100, "contribution": 25.0},
                                          "reschedule_pattern": {"score": 60, "contribution": 15.4},
                                          "rating_trend": {"score": 20, "contribution": 4.0}}),
        _prediction("t2", 5, 75, RiskLevel.critical), _prediction("t2", 1, 68, RiskLevel.high),
        _prediction("t3", 1, 12, RiskLevel.low),
        _prediction("t4", 3, 95, RiskLevel.critical),  # churned: neither at risk nor an alert
        _task("i-overdue", "t1", "human", due=NOW - timedelta(hours=2)),
        _task("i-escalated", "t2", "human", status=InterventionStatus.in_progress, due=NOW + DAY,
              escalated_at=NOW - timedelta(hours=1), escalated_to_role="ops_manager", type_="coaching_session",
              reason="5 reschedules in 14 days"),
        _task("i-done", "t3", "human", status=InterventionStatus.completed, type_="pip_check_in",
              completed_date=NOW - DAY),
        _task("i-auto", "t3", "automated", type_="automated_coaching", reason="First session rated 2"),
    ])
    db.commit()


@pytest.fixture
def app_and_engine(tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    engine = get_engine(url)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        _seed(db)
    # Port 1 is closed: every Temporal call fails, as when the server is down.
    app = create_app(Settings(database_url=url, temporal_address="127.0.0.1:1"))
    yield app, engine
    engine.dispose()


@pytest.fixture
def client(app_and_engine):
    with TestClient(app_and_engine[0]) as c:
        yield c


class FakeHandle:
    def __init__(self, client: FakeTemporal, workflow_id: str):
        self.client, self.workflow_id = client, workflow_id

    async def signal(self, name: str, arg) -> None:  # noqa: ANN001
        if self.client.error:
            raise self.client.error
        self.client.signals.append((self.workflow_id, name, arg))


class FakeTemporal:
    def __init__(self, error: Exception | None = None):
        self.signals: list = []
        self.error = error

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


def _card(html: str, key: str) -> str:
    match = re.search(rf'<li class="kpi" id="kpi-{key}">(.*?)</li>', html, re.S)
    assert match, key
    return re.sub(r"\s+", " ", match.group(1))


def _task_row(html: str, iid: str) -> str:
    at = html.index(f'data-intervention="{iid}"')
    return html[html.rindex("<tr", 0, at):html.index("</tr>", at)]


def _row(engine, iid: str) -> Intervention:  # noqa: ANN001
    with Session(engine) as db:
        return db.get(Intervention, iid)


def test_home_shows_kpis_alerts_and_queue(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<meta http-equiv="refresh" content="15">' in html
    total = _card(html, "total_tutors")
    assert ">3<" in total and "+1" in total and 'change good' in total
    at_risk = _card(html, "at_risk_tutors")
    assert "2 (66.7%)" in at_risk and "+2" in at_risk and "change bad" in at_risk
    first = _card(html, "first_session_success")
    assert ">67%<" in first and "-33.3 pts" in first and "change bad" in first
    no_show = _card(html, "no_show_rate")
    assert ">25.0%<" in no_show and "+5.0 pts" in no_show and "change bad" in no_show

    assert "Critical alerts (1)" in html and "High risk (1)" in html
    critical = html.split('id="critical-heading"')[1].split('id="high-heading"')[0]
    assert "Jane Doe" in critical and "Churn score: <strong>82</strong>" in critical
    assert "No show risk: 3 no-shows in 7 days" in critical
    assert "engagement decline contributed 21 of 82" in critical
    assert "reschedule pattern contributed 15 of 82" in critical and "rating trend" not in critical
    assert "pattern no show risk" not in critical and "s9" not in critical  # said once, in words, not as raw ids
    assert "Retention Interview" in critical
    assert "Old Churner" not in html and "John Smith" not in critical
    assert "Coaching Session" in html.split('id="high-heading"')[1]
    assert 'href="/queue" id="queue-link">View all 2 open tasks' in html
    assert NOW.strftime("%d %B %Y") in html


def test_alert_without_open_task_recommends_review(client, app_and_engine):
    engine = app_and_engine[1]
    with Session(engine) as db:
        db.get(Intervention, "i-overdue").status = InterventionStatus.cancelled
        db.commit()
    critical = client.get("/").text.split('id="critical-heading"')[1].split('id="high-heading"')[0]
    assert "Review profile" in critical


def test_api_lists_interventions_with_filters_and_pages(client):
    body = client.get("/api/v1/interventions").json()
    assert body["total"] == 3 and (body["limit"], body["offset"]) == (50, 0)
    assert {i["intervention_id"] for i in body["items"]} == {"i-overdue", "i-escalated", "i-auto"}
    assert body["items"][0]["intervention_id"] == "i-escalated" and body["items"][0]["tutor_name"] == "John Smith"
    human = client.get("/api/v1/interventions", params={"kind": "human"}).json()
    assert human["total"] == 2 and [i["intervention_id"] for i in human["items"]] == ["i-escalated", "i-overdue"]
    everything = client.get("/api/v1/interventions", params={"status": "all"}).json()
    assert everything["total"] == 4
    automated = client.get("/api/v1/interventions", params={"kind": "automated", "status": "all"}).json()
    assert [i["intervention_id"] for i in automated["items"]] == ["i-auto"]
    page = client.get("/api/v1/interventions", params={"kind": "human", "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [i["intervention_id"] for i in page["items"]] == ["i-overdue"]
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "closed"}, {"kind": "robot"}):
        assert client.get("/api/v1/interventions", params=bad).status_code == 422, bad


def test_api_kpis(client):
    body = client.get("/api/v1/kpis").json()
    kpis = {k["key"]: k for k in body["kpis"]}
    assert list(kpis) == ["total_tutors", "at_risk_tutors", "first_session_success", "no_show_rate"]
    assert (kpis["total_tutors"]["raw"], kpis["total_tutors"]["change_raw"], kpis["total_tutors"]["good"]) == (3, 1, True)
    assert (kpis["at_risk_tutors"]["raw"], kpis["at_risk_tutors"]["change_raw"]) == (2, 2)
    assert kpis["first_session_success"]["raw"] == pytest.approx(2 / 3)
    assert kpis["first_session_success"]["change_raw"] == pytest.approx(-33.3)
    assert kpis["no_show_rate"]["raw"] == pytest.approx(0.25) and kpis["no_show_rate"]["good"] is False
    # As of 31 days ago only the then-previous window has sessions; the future session still does not count.
    earlier = client.get("/api/v1/kpis", params={"as_of": (NOW - 31 * DAY).isoformat()}).json()
    rates = {k["key"]: k["raw"] for k in earlier["kpis"]}
    assert rates["no_show_rate"] == pytest.approx(1 / 5) and rates["first_session_success"] == pytest.approx(1.0)
    assert rates["at_risk_tutors"] == 0
