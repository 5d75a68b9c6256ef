"""GET /api/v1/tutors, its metrics/score/tiers, and /api/v1/kpis?days= on SQLite and PostgreSQL.

Sessions go in through the ingestion API (Temporal unreachable, so they stay pending); the evaluation services
are then called directly, as the workflows' activities would, to write the metrics, predictions and tiers.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.evaluation.batch import evaluate_population
from domain.evaluation.service import evaluate_tutor
from domain.scoring.models import ChurnPrediction
from domain.tutors.models import Tutor
from rules.scoring import COMPONENTS, load_scoring_rules
from tests.auth import as_role
from tests.factories import NOW, feedback_payload, seed_people, session_payload
from tests.integration.pipeline_helpers import troubled_history

RULES = load_scoring_rules(Path(__file__).resolve().parents[2] / "rules" / "scoring.yaml")
DAY = timedelta(days=1)
STEADY, TROUBLED, IDLE, NEWCOMER = "tutor_1", "tutor_2", "tutor_3", "tutor_4"
# Days ago each of the steady tutor's students has their first session: spread over both KPI periods.
JOINS = {"student_1": 58, "student_3": 44, "student_4": 20, "student_5": 10, "student_6": 4}
FIRST_RATINGS = {"student_1": 5, "student_3": 5, "student_4": 3, "student_5": 4, "student_6": 5}


def steady_history() -> list[dict[str, Any]]:
    """A session every other day for 58 days, two reschedules and one old no-show: scored, never flagged."""
    out, counts = [], {}
    for i, days_ago in enumerate(range(58, 0, -2)):
        joined = [s for s, d in JOINS.items() if d >= days_ago]
        student = next((s for s, d in JOINS.items() if d == days_ago), joined[i % len(joined)])
        counts[student] = n = counts.get(student, 0) + 1
        extra: dict[str, Any] = {"session_id": f"sess_{STEADY}_{days_ago}", "session_number": n,
                                 "student_rating": FIRST_RATINGS[student] if n == 1 else 4.5,
                                 "tutor_initiated_reschedule": days_ago in (30, 12)}
        if days_ago == 40:
            extra.update(no_show=True, actual_start=None, student_rating=None, engagement_score=None)
        out.append(session_payload(min(n, 6), tutor=STEADY, student=student, at=NOW - days_ago * DAY, **extra))
    return out


def evaluate(engine: Engine) -> None:
    """Three days of rows: two population rollups, then per-tutor evaluations.

    Both rollups are tier reviews, which write a tier row for every tutor, so each has a history to page through.
    """
    for days_ago in (2, 1):
        with session_scope(engine) as db:
            evaluate_population(db, as_of=NOW - days_ago * DAY, rules=RULES, review=True)
    with session_scope(engine) as db:
        for tutor in (STEADY, TROUBLED):
            evaluate_tutor(db, tutor, as_of=NOW, rules=RULES)


@pytest.fixture
def client(engine: Engine, db_url: str) -> Iterator[TestClient]:
    seed_people(engine, tutors=4, students=6)
    with session_scope(engine) as db:
        db.get(Tutor, IDLE).subjects = ["Physics", "Chemistry"]
        db.get(Tutor, NEWCOMER).onboarding_date = (NOW + DAY).date()  # outside every rollup: never evaluated
    app = create_app(Settings(database_url=db_url, temporal_address="127.0.0.1:1"))
    with TestClient(app) as c:
        c.headers.update(as_role(engine, "admin"))
        sessions = steady_history() + troubled_history(TROUBLED, NOW)
        assert c.post("/api/v1/sessions", json=sessions).status_code == 201
        first = next(s for s in sessions if s["student_id"] == "student_6" and s["session_number"] == 1)
        assert c.post("/api/v1/feedback", json=feedback_payload(first)).status_code == 201
        evaluate(engine)
        yield c


def _ok(response) -> dict[str, Any]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return response.json()


def _invalid(response, field: str) -> None:  # noqa: ANN001
    assert response.status_code == 422, response.text
    assert any(field in e["loc"] for e in response.json()["detail"]), response.json()


def _no_students(text: str) -> None:
    assert "student_" not in text.lower() and "Student " not in text


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["tutor_id"] for item in body["items"]]


def test_list_sorts_by_churn_score_and_paginates(client: TestClient) -> None:
    body = _ok(client.get("/api/v1/tutors"))
    assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
    items = {i["tutor_id"]: i for i in body["items"]}
    scored = [i["churn_score"] for i in body["items"] if i["churn_score"] is not None]
    assert scored == sorted(scored, reverse=True) and len(scored) == 3
    assert _ids(body)[0] == TROUBLED and _ids(body)[-1] == NEWCOMER  # never evaluated: listed, last
    assert items[TROUBLED]["risk_level"] == "Critical" and items[TROUBLED]["tier"] == "At Risk"
    assert items[TROUBLED]["prediction_date"] == NOW.date().isoformat()
    assert items[IDLE]["prediction_date"] == (NOW - DAY).date().isoformat() and items[IDLE]["status"] == "inactive"
    assert [items[NEWCOMER][k] for k in ("churn_score", "risk_level", "tier", "prediction_date")] == [None] * 4
    assert items[STEADY]["name"] == "Tutor 1" and items[STEADY]["subjects"] == ["Mathematics"]
    assert "email" not in items[STEADY] and "behavioral_archetype" not in items[STEADY]
    _no_students(client.get("/api/v1/tutors").text)

    first, rest = (_ok(client.get("/api/v1/tutors", params={"limit": 2, "offset": o})) for o in (0, 2))
    assert first["total"] == rest["total"] == 4 and _ids(first) + _ids(rest) == _ids(body)
    assert _ids(_ok(client.get("/api/v1/tutors", params={"offset": 4}))) == []
    assert _ids(_ok(client.get("/api/v1/tutors", params={"sort": "tutor_id"}))) == [STEADY, TROUBLED, IDLE, NEWCOMER]
    assert _ids(_ok(client.get("/api/v1/tutors", params={"sort": "-tutor_id"})))[0] == NEWCOMER
    by_index = _ok(client.get("/api/v1/tutors", params={"sort": "-performance_index"}))["items"]
    indexes = [i["performance_index"] for i in by_index]
    ranked = [x for x in indexes if x is not None]
    assert ranked == sorted(ranked, reverse=True) and indexes[:len(ranked)] == ranked  # unranked last


def test_list_filters(client: TestClient) -> None:
    def ids(**params: Any) -> list[str]:
        body = _ok(client.get("/api/v1/tutors", params=params))
        assert body["total"] == len(body["items"])
        return sorted(_ids(body))

    assert ids(risk_level="Critical") == [TROUBLED]
    everyone = _ok(client.get("/api/v1/tutors"))["items"]
    low_or_critical = sorted(i["tutor_id"] for i in everyone if i["risk_level"] in ("Low", "Critical"))
    assert ids(risk_level=["Low", "Critical"]) == low_or_critical
    steady_tier = next(i["tier"] for i in everyone if i["tutor_id"] == STEADY)
    assert ids(tier=steady_tier) == sorted(i["tutor_id"] for i in everyone if i["tier"] == steady_tier)
    assert ids(tier="At Risk") == [TROUBLED]
    assert ids(status="inactive") == [IDLE]
    assert ids(status=["active", "churned"]) == [STEADY, TROUBLED, NEWCOMER]
    assert ids(subject="physics") == [IDLE]
    assert ids(subject="MATHEMATICS") == [STEADY, TROUBLED, NEWCOMER]
    assert ids(subject="Math") == []  # an element of the list, not a substring of the JSON
    assert ids(q="tutor_") == [STEADY, TROUBLED, IDLE, NEWCOMER]
    assert ids(q="tutor_2") == [TROUBLED]
    assert ids(q="TUTOR") == [] and ids(q="tutor%") == [] and ids(q="tutor__") == []
    assert ids(risk_level="Critical", status="inactive") == []
    page = _ok(client.get("/api/v1/tutors", params={"status": "active", "limit": 1, "offset": 1}))
    assert page["total"] == 3 and len(page["items"]) == 1

    for params, field in [({"risk_level": "Extreme"}, "risk_level"), ({"tier": "Great"}, "tier"),
                          ({"status": "gone"}, "status"), ({"sort": "name"}, "sort"), ({"limit": 501}, "limit"),
                          ({"limit": 0}, "limit"), ({"offset": -1}, "offset"), ({"q": ""}, "q")]:
        _invalid(client.get("/api/v1/tutors", params=params), field)


def test_metrics_latest_and_history(client: TestClient) -> None:
    body = _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics", params={"window": "30d"}))
    assert (body["tutor_id"], body["window"], body["total"]) == (STEADY, "30d", 3)
    days = [r["calculation_date"] for r in body["items"]]
    assert days == [(NOW - d * DAY).date().isoformat() for d in range(3)]  # newest first
    latest = body["latest"]
    assert latest == body["items"][0] and latest["performance_index"] is not None and latest["performance_tier"]
    # Sessions every other day: days 28..2 ago in the window, one of them (day 12) rescheduled by the tutor.
    assert latest["sessions_scheduled"] == 14 and latest["reschedule_rate"] == pytest.approx(1 / 14, abs=1e-6)
    assert set(latest["satisfaction_by_subject"]) == {"Mathematics"}
    for secondary in ("response_time_p95_minutes", "pd_completion_rate", "availability_changes_per_week",
                      "technical_issues_per_session", "engagement_parts", "satisfaction_by_session_type"):
        assert secondary in latest
    _no_students(client.get(f"/api/v1/tutors/{STEADY}/metrics").text)

    week = _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics", params={"window": "7d"}))
    assert week["window"] == "7d" and week["latest"]["sessions_scheduled"] == 3
    assert week["latest"]["performance_index"] is None  # the index lives on the tier window's row
    quarter = _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics", params={"window": "90d"}))
    assert quarter["latest"]["sessions_scheduled"] == 29
    assert _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics"))["window"] == "30d"  # the default

    yesterday = (NOW - DAY).date().isoformat()
    ranged = _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics", params={"from": yesterday, "to": yesterday}))
    assert ranged["total"] == 1 and ranged["items"][0]["calculation_date"] == yesterday
    assert ranged["latest"]["calculation_date"] == NOW.date().isoformat()  # filters shape the history only
    page = _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics", params={"limit": 2, "offset": 2}))
    assert page["total"] == 3 and [r["calculation_date"] for r in page["items"]] == [days[2]]

    newcomer = _ok(client.get(f"/api/v1/tutors/{NEWCOMER}/metrics"))
    assert (newcomer["latest"], newcomer["items"], newcomer["total"]) == (None, [], 0)
    for params, field in [({"window": "14d"}, "window"), ({"window": "30day"}, "window"),
                          ({"from": "2026-11-20", "to": "2026-11-01"}, "from"), ({"from": "soon"}, "from"),
                          ({"limit": 501}, "limit")]:
        _invalid(client.get(f"/api/v1/tutors/{STEADY}/metrics", params=params), field)
    missing = client.get("/api/v1/tutors/ghost/metrics", params={"window": "7d"})
    assert missing.status_code == 404 and "ghost" in missing.json()["detail"]


def test_score_without_flags_is_the_sum_of_its_components(client: TestClient) -> None:
    body = _ok(client.get(f"/api/v1/tutors/{STEADY}/score"))
    assert body["prediction_date"] == NOW.date().isoformat() and body["flags"] == []
    assert [c["name"] for c in body["components"]] == list(COMPONENTS)
    assert sum(c["weight"] for c in body["components"]) == pytest.approx(1.0)
    for c in body["components"]:
        assert 0 <= c["score"] <= 100 and c["contribution"] == pytest.approx(c["weight"] * c["score"], abs=0.06)
    # Each contribution and the score are rounded to 0.1 on their own.
    assert sum(c["contribution"] for c in body["components"]) == pytest.approx(body["churn_score"], abs=0.4)
    assert body["churn_score"] > 0 and body["risk_level"] in ("Low", "Medium")
    positive = sorted((c for c in body["components"] if c["contribution"] > 0), key=lambda c: -c["contribution"])
    assert body["explanation"] == [f"{c['label']} contributed {c['contribution']:g} of {body['churn_score']:g}"
                                   for c in positive]
    assert (body["rules_version"], body["rules_hash"]) == (RULES.version_label, RULES.hash)
    assert body["model_version"] == f"rules:{RULES.version_label}"
    latest_30 = _ok(client.get(f"/api/v1/tutors/{STEADY}/metrics", params={"window": "30d"}))["latest"]
    assert (body["tier"], body["performance_index"]) == (latest_30["performance_tier"], latest_30["performance_index"])
    assert body["tier_history"] and body["tier_history"][0]["tier"] == body["tier"]


def test_score_with_flags_shows_their_evidence(client: TestClient, engine: Engine) -> None:
    body = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/score"))
    assert body["risk_level"] == "Critical" and body["tier"] == "At Risk"
    assert {f["name"] for f in body["flags"]} == {"poor_first_session", "high_reschedule", "no_show_risk"}
    for flag in body["flags"]:
        assert flag["triggered_at"] and flag["summary"] and flag["bump"] > 0
        assert flag["evidence"]["session_ids"] and all(s.startswith(f"sess_{TROUBLED}_") for s in flag["evidence"]["session_ids"])
    total = sum(c["contribution"] for c in body["components"]) + sum(f["bump"] for f in body["flags"])
    assert min(100.0, total) == pytest.approx(body["churn_score"], abs=0.4)
    assert any(line.startswith("no-show risk flag contributed 25") for line in body["explanation"])
    _no_students(client.get(f"/api/v1/tutors/{TROUBLED}/score").text)

    # A detector that one day records students in its evidence must not leak them through the API.
    with session_scope(engine) as db:
        row = db.execute(select(ChurnPrediction).where(ChurnPrediction.tutor_id == TROUBLED,
                                                       ChurnPrediction.prediction_date == NOW.date())).scalar_one()
        row.flags = [{**f, "evidence": {**f["evidence"], "student_ids": ["student_2"], "Student_Name": "Student 2"}}
                     for f in row.flags]
    body = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/score"))
    assert all(set(f["evidence"]) & {"student_ids", "Student_Name"} == set() for f in body["flags"])
    _no_students(client.get(f"/api/v1/tutors/{TROUBLED}/score").text)


def test_score_on_a_date_and_not_found(client: TestClient) -> None:
    two_days_ago = (NOW - 2 * DAY).date()
    past = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/score", params={"date": two_days_ago.isoformat()}))
    assert past["prediction_date"] == two_days_ago.isoformat()
    assert all(h["assigned_at"][:10] <= two_days_ago.isoformat() for h in past["tier_history"])
    latest = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/score"))
    assert len(latest["tier_history"]) >= len(past["tier_history"])

    never = client.get(f"/api/v1/tutors/{NEWCOMER}/score")
    assert never.status_code == 404 and "not been evaluated" in never.json()["detail"]
    unknown = client.get("/api/v1/tutors/ghost/score")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "No tutor ghost."
    no_day = client.get(f"/api/v1/tutors/{TROUBLED}/score", params={"date": "2026-01-01"})
    assert no_day.status_code == 404 and "2026-01-01" in no_day.json()["detail"]
    _invalid(client.get(f"/api/v1/tutors/{TROUBLED}/score", params={"date": "2026-13-01"}), "date")


def test_tier_history(client: TestClient) -> None:
    body = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/tiers"))
    assert body["tutor_id"] == TROUBLED and body["total"] == len(body["items"]) >= 2
    stamps = [h["assigned_at"] for h in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["items"][-1]["source"] == "monthly_review" and body["items"][0]["tier"] == "At Risk"
    assert body["items"][0]["rules_version"] == RULES.version_label and body["items"][0]["reasons"]
    page = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/tiers", params={"limit": 1, "offset": 1}))
    assert page["total"] == body["total"] and page["items"] == body["items"][1:2]
    day = (NOW - 2 * DAY).date().isoformat()
    on_day = _ok(client.get(f"/api/v1/tutors/{TROUBLED}/tiers", params={"from": day, "to": day}))
    assert on_day["total"] >= 1 and all(h["assigned_at"].startswith(day) for h in on_day["items"])
    assert _ok(client.get(f"/api/v1/tutors/{NEWCOMER}/tiers"))["total"] == 0
    assert client.get("/api/v1/tutors/ghost/tiers").status_code == 404
    _invalid(client.get(f"/api/v1/tutors/{TROUBLED}/tiers", params={"from": "2026-11-20", "to": "2026-11-19"}), "from")


def test_kpis_period_length(client: TestClient) -> None:
    as_of = NOW.isoformat()
    default = _ok(client.get("/api/v1/kpis", params={"as_of": as_of}))
    assert default["days"] == 30
    week = _ok(client.get("/api/v1/kpis", params={"as_of": as_of, "days": 7}))
    assert week["days"] == 7
    for report in (default, week):
        assert [k["key"] for k in report["kpis"]] == ["total_tutors", "at_risk_tutors", "first_session_success",
                                                       "no_show_rate"]
        assert all(k["change_raw"] is not None and k["change"] for k in report["kpis"]), report
    kpis = {k["key"]: k for k in week["kpis"]}
    assert "previous 7 days" in kpis["no_show_rate"]["note"]
    # Last 7 days: the steady tutor's day-4 first session (good) and the troubled one's (rated 2); the 7 before
    # that: the day-10 first session (good).
    assert kpis["first_session_success"]["raw"] == pytest.approx(0.5)
    assert kpis["first_session_success"]["change_raw"] == pytest.approx(-50.0)
    assert kpis["no_show_rate"]["raw"] == pytest.approx(3 / 13) and kpis["no_show_rate"]["good"] is False
    assert (kpis["at_risk_tutors"]["raw"], kpis["at_risk_tutors"]["change_raw"]) == (1, 1)
    for days in (6, 91):
        _invalid(client.get("/api/v1/kpis", params={"days": days}), "days")


def test_openapi_documents_the_read_schemas(client: TestClient) -> None:
    spec = _ok(client.get("/api/openapi.json"))
    for path in ("/api/v1/tutors", "/api/v1/tutors/{tutor_id}/metrics", "/api/v1/tutors/{tutor_id}/score",
                 "/api/v1/tutors/{tutor_id}/tiers"):
        assert "get" in spec["paths"][path], path
    schemas = spec["components"]["schemas"]
    assert {"TutorPage", "TutorSummary", "MetricsReport", "MetricsRow", "ScoreReport", "Component", "FlagRead",
            "TierPage", "TierChange"} <= set(schemas)
    window = next(p for p in spec["paths"]["/api/v1/tutors/{tutor_id}/metrics"]["get"]["parameters"]
                  if p["name"] == "window")
    assert window["schema"]["enum"] == ["7d", "30d", "90d"]
    kpi_params = {p["name"] for p in spec["paths"]["/api/v1/kpis"]["get"]["parameters"]}
    assert {"as_of", "days"} <= kpi_params
