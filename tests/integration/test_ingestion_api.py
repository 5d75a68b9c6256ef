"""POST /api/v1/sessions and /feedback on SQLite and PostgreSQL: validation, idempotency, all-or-nothing."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.main import create_app
from core.db import session_scope
from core.types import utcnow
from core.config import Settings
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from domain.sessions.service import pending_tutors
from tests.auth import as_role
from tests.factories import feedback_payload, seed_people, session_payload


@pytest.fixture
def client(engine: Engine, db_url: str) -> Iterator[TestClient]:
    seed_people(engine)
    # Temporal deliberately unreachable: ingestion must still store, and leave the sessions pending for the sweep.
    app = create_app(Settings(database_url=db_url, temporal_address="127.0.0.1:1"))
    with TestClient(app) as c:
        c.headers.update(as_role(engine, "service"))  # the marketplace's ingestion account
        yield c


def count(engine: Engine, model) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_single_session_is_stored_once(client: TestClient, engine: Engine) -> None:
    body = session_payload(1)
    first = client.post("/api/v1/sessions", json=body)
    assert first.status_code == 201, first.text
    assert first.json() == {"id": body["session_id"], "status": "created"}
    again = client.post("/api/v1/sessions", json=body)
    assert again.status_code == 200
    assert again.json() == {"id": body["session_id"], "status": "existing"}
    assert count(engine, TutoringSession) == 1
    with engine.connect() as conn:
        row = conn.execute(select(TutoringSession.__table__).where(TutoringSession.session_id == body["session_id"])).one()
    assert row.evaluated_at is None  # pending: the sweep signals it once Temporal is back


def test_batch_with_repeats_inside_and_across(client: TestClient, engine: Engine) -> None:
    batch = [session_payload(n) for n in (1, 2, 3)] + [session_payload(2)]
    r = client.post("/api/v1/sessions", json=batch)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 3 and r.json()["existing"] == 1
    assert r.json()["evaluation"] == "pending"
    r = client.post("/api/v1/sessions", json=batch[:2])
    assert r.status_code == 200 and r.json()["created"] == 0
    assert count(engine, TutoringSession) == 3


@pytest.mark.parametrize(("change", "field"), [
    ({"tutor_id": None}, "tutor_id"),
    ({"student_rating": 7}, "student_rating"),
    ({"engagement_score": 1.5}, "engagement_score"),
    ({"tutor_id": "tutor_999"}, "tutor_id"),
    ({"student_id": "nobody"}, "student_id"),
    ({"scheduled_start": "2026-11-20T10:00:00"}, "scheduled_start"),  # no zone
    ({"scheduled_start": "yesterday-ish"}, "scheduled_start"),
    ({"session_number": 0}, "session_number"),
    ({"no_show": True}, "actual_start"),
])
def test_malformed_session_is_rejected_naming_the_field(client: TestClient, engine: Engine, change: dict, field: str) -> None:
    body = session_payload(1)
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    r = client.post("/api/v1/sessions", json=body)
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert any(field in loc or (field == "actual_start" and "actual_start" in e["msg"])
               for loc, e in zip(locs, r.json()["detail"], strict=True)), r.json()
    assert count(engine, TutoringSession) == 0


def test_one_bad_item_rejects_the_whole_batch(client: TestClient, engine: Engine) -> None:
    batch = [session_payload(1), session_payload(2, student_rating=9), session_payload(3, tutor_id="ghost")]
    r = client.post("/api/v1/sessions", json=batch)
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", 1, "student_rating"] in locs
    assert count(engine, TutoringSession) == 0
    r = client.post("/api/v1/sessions", json=[session_payload(1), session_payload(3, tutor_id="ghost")])
    assert r.status_code == 422 and ["body", 1, "tutor_id"] in [e["loc"] for e in r.json()["detail"]]
    assert count(engine, TutoringSession) == 0


def test_feedback_validated_against_its_session(client: TestClient, engine: Engine) -> None:
    session = session_payload(1)
    assert client.post("/api/v1/sessions", json=session).status_code == 201
    good = feedback_payload(session)
    for change, field in [({"overall_rating": 6}, "overall_rating"), ({"session_id": "nope"}, "session_id"),
                          ({"tutor_id": "tutor_2"}, "tutor_id"), ({"timestamp": "2026-11-20T10:00:00"}, "timestamp"),
                          ({"ratings": {"patience": 0}}, "patience")]:
        r = client.post("/api/v1/feedback", json={**good, **change})
        assert r.status_code == 422, (change, r.text)
        assert any(field in e["loc"] for e in r.json()["detail"]), r.json()
    assert count(engine, StudentFeedback) == 0
    assert client.post("/api/v1/feedback", json=good).status_code == 201
    assert client.post("/api/v1/feedback", json=good).status_code == 200
    again = client.post("/api/v1/feedback", json={**good, "feedback_id": "other"})
    assert again.status_code == 422  # a session takes one feedback
    assert count(engine, StudentFeedback) == 1


def test_feedback_makes_its_evaluated_session_pending_again(client: TestClient, engine: Engine) -> None:
    """So a lost signal (Temporal down) is made good by the sweep, as for a new session; a replay changes nothing."""
    session = session_payload(1)
    assert client.post("/api/v1/sessions", json=session).status_code == 201
    evaluated = utcnow()
    with session_scope(engine) as db:
        db.get(TutoringSession, session["session_id"]).evaluated_at = evaluated
        assert pending_tutors(db, older_than=utcnow() + timedelta(minutes=1)) == []
    assert client.post("/api/v1/feedback", json=feedback_payload(session)).status_code == 201
    with session_scope(engine) as db:
        assert db.get(TutoringSession, session["session_id"]).evaluated_at is None
        assert pending_tutors(db, older_than=utcnow() + timedelta(minutes=1)) == [session["tutor_id"]]
        db.get(TutoringSession, session["session_id"]).evaluated_at = evaluated
    assert client.post("/api/v1/feedback", json=feedback_payload(session)).status_code == 200  # the replay
    with session_scope(engine) as db:
        assert db.get(TutoringSession, session["session_id"]).evaluated_at is not None


def test_openapi_documents_bodies_and_docs_page_is_offline(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert "SessionIn" in spec["components"]["schemas"]
    assert "/api/v1/sessions" in spec["paths"]
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/api/docs-static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/api/docs-static/swagger-ui-bundle.js").status_code == 200
