"""Home's alert filters (risk level, tier, subject), one-click assignment and the 30-day risk chart, on SQLite and
PostgreSQL with Temporal unreachable (tests/browser/test_personas_ops.py assigns through a real workflow)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.metrics.models import TutorPerformanceMetric
from domain.scoring.models import ChurnPrediction, RiskLevel
from domain.tutors.models import Tutor
from tests.factories import intervention_row
from tests.integration.web_auth import make_user, sign_in

NOW = datetime.now(UTC)
TODAY = NOW.date()


def _tutor(tid: str, name: str, subjects: list[str]) -> Tutor:
    return Tutor(tutor_id=tid, name=name, email=f"{tid}@example.com", onboarding_date=TODAY - timedelta(days=200),
                 subjects=subjects)


def _prediction(tid: str, days_ago: int, score: float, level: RiskLevel) -> ChurnPrediction:
    day = TODAY - timedelta(days=days_ago)
    return ChurnPrediction(tutor_id=tid, prediction_date=day, as_of=NOW - timedelta(days=days_ago),
                           churn_score=score, risk_level=level, model_version="test-1")


def _tier(tid: str, tier: str) -> TutorPerformanceMetric:
    return TutorPerformanceMetric(tutor_id=tid, calculation_date=TODAY, window="30day", as_of=NOW,
                                  performance_tier=tier)


@pytest.fixture
def client(engine: Engine, db_url: str) -> Iterator[TestClient]:
    with session_scope(engine) as db:
        db.add_all([_tutor("t-ana", "Ana Critical", ["Algebra"]), _tutor("t-ben", "Ben Critical", ["Physics"]),
                    _tutor("t-cai", "Cai High", ["Algebra", "Physics"]), _tutor("t-dee", "Dee Low", ["Chemistry"])])
        db.flush()
        db.add_all([_prediction("t-ana", 0, 88, RiskLevel.critical), _prediction("t-ben", 0, 81, RiskLevel.critical),
                    _prediction("t-cai", 0, 64, RiskLevel.high), _prediction("t-dee", 0, 12, RiskLevel.low),
                    # two earlier days for the chart: Ana was High, then Critical
                    _prediction("t-ana", 2, 66, RiskLevel.high), _prediction("t-ana", 1, 84, RiskLevel.critical),
                    _tier("t-ana", "At Risk"), _tier("t-ben", "Needs Attention"), _tier("t-cai", "At Risk")])
        db.add(intervention_row("iv-ana", "t-ana", "retention_interview", recommended=NOW - timedelta(hours=3),
                                owner_role="people_ops", status="pending", due_date=NOW + timedelta(days=1)))
        db.add(intervention_row("iv-ben", "t-ben", "coaching_session", recommended=NOW - timedelta(hours=3),
                                owner_role="people_ops", status="in_progress", assigned_to="u_busy",
                                due_date=NOW + timedelta(days=2)))
        db.add(intervention_row("iv-busy", "t-cai", "coaching_session", recommended=NOW - timedelta(hours=3),
                                owner_role="people_ops", status="in_progress", assigned_to="u_busy"))
    make_user(engine, "ops_manager", user_id="u_sarah", name="Sarah Chen")
    make_user(engine, "people_ops", user_id="u_busy", name="Alan Busy")  # two open tasks already
    make_user(engine, "people_ops", user_id="u_marcus", name="Marcus Webb")  # none: the suggestion
    app = create_app(Settings(database_url=db_url, temporal_address="127.0.0.1:1"))
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def _section(html: str, level: str) -> str:
    start = html.index(f'id="{level.lower()}-heading"')
    end = html.find("</section>", start)
    return html[start:end]


def test_filters_narrow_the_alerts_and_bad_values_fall_back(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine, make_user(engine, "admin", user_id="u_admin"))
    html = client.get("/").text
    assert "Ana Critical" in _section(html, "Critical") and "Ben Critical" in _section(html, "Critical")
    assert "Cai High" in _section(html, "High") and "Dee Low" not in html  # Low is not an alert by default
    physics = client.get("/?subject=Physics").text
    assert "Ben Critical" in _section(physics, "Critical") and "Ana Critical" not in _section(physics, "Critical")
    assert "Cai High" in _section(physics, "High")  # Cai lists Physics second
    at_risk = client.get("/?tier=At+Risk").text
    assert "Ana Critical" in _section(at_risk, "Critical") and "Ben Critical" not in _section(at_risk, "Critical")
    assert "Cai High" in _section(at_risk, "High")
    low = client.get("/?risk=Low").text
    assert "Dee Low" in _section(low, "Low") and 'id="critical-heading"' not in low
    # The live region refreshes with the same filters.
    assert 'data-live-src="/partials/home/alerts?subject=Physics"' in physics
    assert "Ana Critical" not in client.get("/partials/home/alerts?subject=Physics").text
    # A hand-edited value is "any", not an error: the page still renders every section.
    bad = client.get("/?risk=Bogus&tier=Nope&subject=Klingon")
    assert bad.status_code == 200 and "Ana Critical" in bad.text and "Cai High" in bad.text


def test_one_click_assignment_offers_me_and_the_least_loaded_teammate(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine, make_user(engine, "ops_manager", user_id="u_other_manager"))
    html = client.get("/").text
    ana = _section(html, "Critical").split("Ben Critical")[0]
    assert 'action="/queue/iv-ana/claim"' in ana and ">Assign to me<" in ana
    assert 'action="/queue/iv-ana/assign"' in ana and ">Assign to Marcus Webb<" in ana
    assert 'name="assignee" value="u_marcus"' in ana and 'name="return_to" value="home"' in ana
    assert 'href="/tutors/t-ana"' in ana
    # Ben's task is in progress with Alan: not claimable, but a manager may hand it to Marcus.
    ben = _section(html, "Critical").split("Ben Critical")[1]
    assert "/queue/iv-ben/claim" not in ben and 'action="/queue/iv-ben/assign"' in ben
    # People ops may claim, but assigning is a manager's.
    people = TestClient(client.app, base_url="https://testserver")
    sign_in(people, engine, make_user(engine, "people_ops", user_id="u_third"))
    theirs = people.get("/").text
    assert 'action="/queue/iv-ana/claim"' in theirs and "/assign" not in theirs
    # The click goes to the case's workflow; Temporal is down here, so nothing changes and the page says so.
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    down = client.post("/queue/iv-ana/claim", data={"csrf_token": token, "return_to": "home", "home": ""})
    assert down.status_code == 503 and "Temporal is unreachable" in down.text


def test_home_says_what_an_assignment_did(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine, make_user(engine, "ops_manager", user_id="u_m2"))
    assert "Assigned: Retention Interview" in client.get("/?done=iv-ana&did=assign").text
    # The message names the task from the database: an unknown id or action shows nothing.
    quiet = client.get("/?done=nope&did=assign").text + client.get("/?done=iv-ana&did=explode").text
    assert 'class="flash"' not in quiet


def test_risk_trend_chart_counts_each_day(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine, make_user(engine, "ops_manager", user_id="u_m3"))
    html = client.get("/").text
    assert 'data-chart-config=' in html and "/static/charts.js" in html
    rows = dict(re.findall(r'<tr><th scope="row">([0-9-]+)</th>((?:<td>\d+</td>)+)</tr>', html))
    cells = {day: [int(x) for x in re.findall(r"<td>(\d+)</td>", tds)] for day, tds in rows.items()}
    # Columns: Critical, High, Medium, Low.
    assert cells[(TODAY - timedelta(days=2)).isoformat()] == [0, 1, 0, 0]
    assert cells[(TODAY - timedelta(days=1)).isoformat()] == [1, 0, 0, 0]
    assert cells[TODAY.isoformat()] == [2, 1, 0, 1]
    physics = client.get("/?subject=Physics").text
    assert f'<tr><th scope="row">{TODAY.isoformat()}</th><td>1</td><td>1</td><td>0</td><td>0</td></tr>' in physics
