"""A tutor's and a student's own data (/api/v1/me) and the public feedback link, over the real app and database."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.audit.models import AuditLog
from domain.feedback import anonymise, links
from domain.feedback.models import StudentFeedback
from domain.users.models import User
from tests.integration.auth_helpers import World, account, api_client, bearer, build_app, seed_world

@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


def _tutor(engine: Engine, w: World, which: str = "a") -> dict[str, str]:
    tutor_id = w.tutor_a if which == "a" else w.tutor_b
    return bearer(engine, account(engine, "tutor", user_id=f"u_{tutor_id}", tutor_id=tutor_id))


def _student(engine: Engine, student_id: str) -> dict[str, str]:
    return bearer(engine, account(engine, "student", user_id=f"u_{student_id}", student_id=student_id))


def _audit_rows(engine: Engine) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(AuditLog)).scalar_one()


def _feedback_rows(engine: Engine, session_id: str) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(StudentFeedback)
                          .where(StudentFeedback.session_id == session_id)).scalar_one()


async def test_tutor_reads_only_their_own_sessions_feedback_and_tiers(settings: Settings, engine: Engine,
                                                                      world: World) -> None:
    app = build_app(settings)
    async with api_client(app) as client:
        a, b = _tutor(engine, world, "a"), _tutor(engine, world, "b")
        sessions_a = (await client.get("/api/v1/me/tutor/sessions", headers=a)).json()
        sessions_b = (await client.get("/api/v1/me/tutor/sessions", headers=b)).json()
        assert sessions_a["total"] == 9 and sessions_b["total"] == 3
        assert {s["subject"] for s in sessions_a["items"]} == {"Mathematics"}
        assert {s["subject"] for s in sessions_b["items"]} == {"Chemistry"}
        starts = [s["scheduled_start"] for s in sessions_a["items"]]
        assert starts == sorted(starts, reverse=True)
        assert sum(s["first_session"] for s in sessions_a["items"]) == 3
        # Nothing about the student, and no per-session rating (it would name its author).
        assert set(sessions_a["items"][0]) == {"subject", "session_type", "scheduled_start", "actual_start",
                                               "duration_minutes", "first_session", "late_start_minutes", "no_show",
                                               "tutor_initiated_reschedule"}

        feedback_a = await client.get("/api/v1/me/tutor/feedback", headers=a)
        feedback_b = await client.get("/api/v1/me/tutor/feedback", headers=b)
        assert "TUTOR-B-MARKER" not in feedback_a.text and "TUTOR-B-MARKER" in feedback_b.text
        assert [w["week"] for w in feedback_a.json()["items"]] == ["2026-W46", "2026-W45"]
        assert [w["week"] for w in feedback_b.json()["items"]] == ["2026-W46"]

        tiers = (await client.get("/api/v1/me/tutor/tiers", headers=a)).json()
        # At Risk then Needs Attention: one "Growing" from the first of them, no reasons, no index.
        assert tiers == {"items": [{"tier": "Growing", "since": "2026-11-10"},
                                   {"tier": "Strong", "since": "2026-11-01"}], "total": 2, "limit": 50, "offset": 0}
        assert (await client.get("/api/v1/me/tutor/tiers", headers=b)).json()["items"] == []


async def test_small_weeks_show_counts_only_and_big_weeks_show_items_without_students(
        settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    async with api_client(app) as client:
        response = await client.get("/api/v1/me/tutor/feedback", headers=_tutor(engine, world))
    assert response.status_code == 200
    body = response.json()
    assert body["min_students"] == anonymise.K_MIN_STUDENTS == 3 and body["total"] == 2
    shown, small = body["items"]
    # W45 had three feedbacks from only two students: the count, nothing else.
    assert small == {"week": "2026-W45", "week_start": "2026-11-02", "feedback_count": 3, "suppressed": True,
                     "average_rating": None, "dimension_averages": {}, "items": []}
    assert "SUPPRESSED-MARKER" not in response.text
    # W46 had three students: their items, dated by week only.
    assert shown["suppressed"] is False and shown["feedback_count"] == 3 and shown["week_start"] == "2026-11-09"
    assert sorted(i["overall_rating"] for i in shown["items"]) == [3, 4, 5]
    assert shown["average_rating"] == 4.0 and shown["dimension_averages"]["communication"] == 4.0
    assert set(shown["items"][0]) == {"overall_rating", "dimensions", "would_recommend", "improvement_areas", "text"}
    texts = {i["text"] for i in shown["items"]}
    assert texts == {"Great algebra help", "A bit fast for me", f"Thanks! {anonymise.REDACTED}"}
    raw = response.text.lower()
    for needle in world.forbidden():
        assert needle not in raw, needle
    assert "2026-11-1" not in raw.replace('"week_start":"2026-11-09"', "")  # no day finer than the week
    # The order is fixed by a keyed hash: reloading shows the same order.
    async with api_client(app) as client:
        again = (await client.get("/api/v1/me/tutor/feedback", headers=_tutor(engine, world))).json()
    assert again["items"][0]["items"] == shown["items"]


def test_suppression_counts_distinct_students_and_order_ignores_time(engine: Engine, world: World) -> None:
    with session_scope(engine) as db:
        strict = anonymise.tutor_feedback(db, world.tutor_a, k=4)
        loose = anonymise.tutor_feedback(db, world.tutor_a, k=2)
        keyed = [anonymise.tutor_feedback(db, world.tutor_a, k=1, key=bytes([n]) * 32) for n in range(8)]
    assert [w.suppressed for w in strict.weeks] == [True, True]
    assert [w.suppressed for w in loose.weeks] == [False, False]
    assert strict.weeks[0].average_rating is None and strict.weeks[0].items == []
    # Different keys give different orders of the same items: the order carries no time information.
    orders = {tuple(i.text for i in page.weeks[0].items) for page in keyed}
    assert len(orders) > 1 and all(sorted(o) == sorted(next(iter(orders))) for o in orders)
    assert anonymise.redact("bye from yolanda, Yolanda Peabody", ["Yolanda Peabody"]) == "bye from [name], [name]"
    assert anonymise.redact("Algebra with Al", ["Al Smith"]) == "Algebra with [name]"


async def test_tutor_summary_is_growth_framed_and_hides_small_sample_ratings(
        settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    async with api_client(app) as client:
        response = await client.get("/api/v1/me/tutor/summary", headers=_tutor(engine, world))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["first_name"] == "Emily" and body["tier"] == "Growing" and body["tier_since"] == "2026-11-10"
    assert body["onboarding_date"] == "2026-01-05" and body["tenure_days"] >= 330
    week, month = body["this_week"], body["last_30_days"]
    # Two students rated that week: their average would be their ratings.
    assert week["days"] == 7 and week["average_rating"] is None and week["rating_hidden"] is True
    assert month["days"] == 30 and month["average_rating"] == 4.85 and month["rating_hidden"] is False
    assert month["sessions_scheduled"] == 6 and month["no_show_count"] == 0 and month["reschedule_rate"] == 0.0
    assert body["highlights"] == ["4.8+ average rating over 30 days"]
    assert "at risk" not in response.text.lower() and "churn" not in response.text.lower()
    assert set(body) == {"first_name", "tier", "tier_since", "onboarding_date", "tenure_days", "this_week",
                         "last_30_days", "highlights"}


async def test_student_reads_only_their_own_feedback_and_sessions(settings: Settings, engine: Engine,
                                                                   world: World) -> None:
    app = build_app(settings)
    first, fourth = world.student_ids[0], world.student_ids[3]
    async with api_client(app) as client:
        mine = (await client.get("/api/v1/me/student/feedback", headers=_student(engine, first))).json()
        sessions = (await client.get("/api/v1/me/student/sessions", headers=_student(engine, fourth))).json()
        other = (await client.get("/api/v1/me/student/feedback", headers=_student(engine, fourth))).json()
    assert mine["total"] == 4  # three with Emily, one with Bob
    assert {(f["tutor_first_name"], f["subject"]) for f in mine["items"]} == {("Emily", "Mathematics"),
                                                                               ("Bob", "Chemistry")}
    newest = mine["items"][0]
    assert newest["session_date"] == "2026-11-09" and newest["text"] in {"Great algebra help", "TUTOR-B-MARKER again"}
    assert "Lindqvist" not in json.dumps(mine) and "Tran" not in json.dumps(mine)
    assert [f["text"] for f in other["items"]] == ["TUTOR-B-MARKER"]
    # The fourth student: one session with feedback (Bob), three with Emily without.
    assert sessions["total"] == 4
    assert sorted((s["tutor_first_name"], s["feedback_given"]) for s in sessions["items"]) == [
        ("Bob", True), ("Emily", False), ("Emily", False), ("Emily", False)]


async def test_paging_is_validated_and_applied(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    a = _tutor(engine, world)
    async with api_client(app) as client:
        for path, query, field in (("/api/v1/me/tutor/sessions", "limit=0", "limit"),
                                   ("/api/v1/me/tutor/sessions", "limit=201", "limit"),
                                   ("/api/v1/me/tutor/tiers", "offset=-1", "offset"),
                                   ("/api/v1/me/tutor/feedback", "limit=53", "limit"),
                                   ("/api/v1/me/tutor/sessions", "offset=abc", "offset")):
            response = await client.get(f"{path}?{query}", headers=a)
            assert response.status_code == 422, (path, query)
            assert response.json()["detail"][0]["loc"] == ["query", field]
        page = (await client.get("/api/v1/me/tutor/sessions?limit=2&offset=1", headers=a)).json()
        everything = (await client.get("/api/v1/me/tutor/sessions", headers=a)).json()
        assert page["items"] == everything["items"][1:3] and page["total"] == 9
        weeks = (await client.get("/api/v1/me/tutor/feedback?limit=1&offset=1", headers=a)).json()
        assert [w["week"] for w in weeks["items"]] == ["2026-W45"] and weeks["total"] == 2


async def test_roles_and_unlinked_accounts_are_refused(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    tutor = _tutor(engine, world)
    student = _student(engine, world.student_ids[0])
    staff = bearer(engine, account(engine, "ops_manager"))
    async with api_client(app) as client:
        assert (await client.get("/api/v1/me/tutor/summary")).status_code == 401
        assert (await client.get("/api/v1/me/tutor/summary", headers=student)).status_code == 403
        assert (await client.get("/api/v1/me/student/feedback", headers=tutor)).status_code == 403
        assert (await client.get("/api/v1/me/student/sessions", headers=staff)).status_code == 403
        # An account whose link to its record is gone (the database allows it; the product must not crash).
        with session_scope(engine) as db:
            db.execute(update(User).where(User.user_id == f"u_{world.tutor_a}").values(tutor_id=None))
            db.execute(update(User).where(User.user_id == f"u_{world.student_ids[0]}").values(student_id=None))
        for path, headers, what in (("/api/v1/me/tutor/summary", tutor, "tutor record"),
                                    ("/api/v1/me/tutor/feedback", tutor, "tutor record"),
                                    ("/api/v1/me/student/sessions", student, "student record")):
            response = await client.get(path, headers=headers)
            assert response.status_code == 403 and what in response.json()["detail"], path


async def test_every_student_data_read_leaves_an_audit_row(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    tutor, student = _tutor(engine, world), _student(engine, world.student_ids[0])
    token, _ = links.sign("a47_open")
    async with api_client(app) as client:
        for path, headers in (("/api/v1/me/tutor/summary", tutor), ("/api/v1/me/tutor/sessions", tutor),
                              ("/api/v1/me/tutor/feedback", tutor), ("/api/v1/me/tutor/tiers", tutor),
                              ("/api/v1/me/student/feedback", student), ("/api/v1/me/student/sessions", student),
                              (f"/api/v1/feedback/link/{token}", {})):
            before = _audit_rows(engine)
            assert (await client.get(path, headers=headers)).status_code == 200, path
            assert _audit_rows(engine) == before + 1, path
        before = _audit_rows(engine)
        assert (await client.post(f"/api/v1/feedback/link/{token}", json={"rating": 5})).status_code == 201
        assert _audit_rows(engine) == before + 1
    with session_scope(engine) as db:
        last = db.execute(select(AuditLog).order_by(AuditLog.audit_id.desc()).limit(1)).scalar_one()
        student_reads = db.execute(select(AuditLog).where(
            AuditLog.actor == f"u_{world.student_ids[0]}")).scalars().all()
    assert (last.actor, last.action, last.resource_type, last.resource_id) == (
        "anonymous:feedback-link", "write", "student_data", "session_id=a47_open")
    assert last.source == "10.1.2.3" and token not in json.dumps(last.details)  # the token is a credential
    assert {r.details["path"] for r in student_reads} == {"/api/v1/me/student/feedback", "/api/v1/me/student/sessions"}


async def test_feedback_link_flow_stores_once(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    async with api_client(app) as client:
        staff = bearer(engine, account(engine, "people_ops"))
        service = bearer(engine, account(engine, "service"))
        issued = await client.post("/api/v1/feedback/links", json={"session_id": "a47_first"}, headers=service)
        assert issued.status_code == 201, issued.text
        token, path = issued.json()["token"], issued.json()["path"]
        assert path == f"/api/v1/feedback/link/{token}"
        assert (await client.post("/api/v1/feedback/links", json={"session_id": "a47_first"},
                                  headers=staff)).status_code == 201
        for role in ("tutor", "student"):
            links_as = bearer(engine, account(engine, role, user_id=f"u_l_{role}",
                                              **({"tutor_id": world.tutor_b} if role == "tutor"
                                                 else {"student_id": world.student_ids[3]})))
            assert (await client.post("/api/v1/feedback/links", json={"session_id": "a47_first"},
                                      headers=links_as)).status_code == 403
        unknown = await client.post("/api/v1/feedback/links", json={"session_id": "nope"}, headers=staff)
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "session_id"]

        form = await client.get(path)
        assert form.status_code == 200
        body = form.json()
        assert (body["tutor_first_name"], body["subject"], body["first_session"], body["already_submitted"]) == (
            "Emily", "Mathematics", True, False)
        raw = form.text.lower()
        assert all(n not in raw for n in world.forbidden() if n not in ("churn", "risk")) and "tran" not in raw

        answers = {"rating": 2, "dimensions": {"communication": 2}, "text": "Hard to follow",
                   "first_session": {"work_again": "no", "improvement_areas": ["Tutor was late", "Technical issues"]}}
        first = await client.post(path, json=answers)
        assert first.status_code == 201, first.text
        assert first.json() == {"feedback_id": links.feedback_id_for("a47_first"), "status": "created"}
        second = await client.post(path, json={**answers, "rating": 5})
        assert second.status_code == 409 and "already submitted" in second.json()["detail"]
        assert _feedback_rows(engine, "a47_first") == 1
        assert (await client.get(path)).json()["already_submitted"] is True
    with session_scope(engine) as db:
        row = db.execute(select(StudentFeedback).where(StudentFeedback.session_id == "a47_first")).scalar_one()
    assert (row.overall_rating, row.student_id, row.tutor_id, row.is_first_session, row.would_recommend) == (
        2, world.student_ids[3], world.tutor_a, True, False)
    assert row.improvement_areas == ["Tutor was late", "Technical issues"] and row.communication_rating == 2
    assert row.free_text_feedback == "Hard to follow"


async def test_link_answers_are_validated_naming_the_field(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    token, _ = links.sign("a47_open")  # session number 5: not a first session
    first_token, _ = links.sign("a47_first")
    future, _ = links.sign("a_future")
    url = f"/api/v1/feedback/link/{token}"
    async with api_client(app) as client:
        for body, loc in (({"rating": 6}, ["body", "rating"]), ({}, ["body", "rating"]),
                          ({"rating": 4, "text": "x" * 501}, ["body", "text"]),
                          ({"rating": 4, "dimensions": {"patience": 0}}, ["body", "dimensions", "patience"]),
                          ({"rating": 4, "student_id": "stu_xq71"}, ["body", "student_id"]),
                          ({"rating": 4, "first_session": {"work_again": "yes_definitely"}}, ["body", "first_session"])):
            response = await client.post(url, json=body)
            assert response.status_code == 422, body
            assert response.json()["detail"][0]["loc"] == loc, body
        bad_area = await client.post(f"/api/v1/feedback/link/{first_token}", json={
            "rating": 4, "first_session": {"work_again": "maybe", "improvement_areas": ["Technical issues"]}})
        assert bad_area.status_code == 422 and "improvement_areas" in bad_area.json()["detail"][0]["msg"]
        not_yet = await client.post(f"/api/v1/feedback/link/{future}", json={"rating": 5})
        assert not_yet.status_code == 409 and "not taken place" in not_yet.json()["detail"]
    assert _feedback_rows(engine, "a47_open") == 0 and _feedback_rows(engine, "a47_first") == 0


async def test_tampered_and_expired_links_are_refused(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings)
    good, _ = links.sign("a47_open")
    payload, mac = good.split(".")
    other_payload = links.sign("a46_1")[0].split(".")[0]
    expired, _ = links.sign("a47_open", now=utcnow() - timedelta(days=links.LINK_DAYS, seconds=1))
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    async with api_client(app) as client:
        for token in (f"{payload}.{flipped}", f"{other_payload}.{mac}", f"{payload}.{mac}!!", payload, "garbage",
                      f"{payload}.", links.sign("a47_open", key=b"k" * 32)[0]):
            for method in ("GET", "POST"):
                response = await client.request(method, f"/api/v1/feedback/link/{token}", json={"rating": 5})
                assert response.status_code == 404, (token, method)
                assert "not valid" in response.json()["detail"]
        for method in ("GET", "POST"):
            response = await client.request(method, f"/api/v1/feedback/link/{expired}", json={"rating": 5})
            assert response.status_code == 410 and "expired" in response.json()["detail"]
        assert (await client.get(f"/api/v1/feedback/link/{good}")).status_code == 200
    assert _feedback_rows(engine, "a47_open") == 0 and _feedback_rows(engine, "a46_1") == 1


async def test_submissions_are_rate_limited_per_address(settings: Settings, engine: Engine, world: World) -> None:
    app = build_app(settings.model_copy(update={"feedback_rate_limit": "3/minute"}))
    token, _ = links.sign("a47_open")
    url = f"/api/v1/feedback/link/{token}"
    async with api_client(app) as client, api_client(app, host="10.9.9.9") as elsewhere:
        codes = [(await client.post(url, json={"rating": 9})).status_code for _ in range(3)]
        assert codes == [422, 422, 422]  # refused answers count too: guessing costs budget
        limited = await client.post(url, json={"rating": 5})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert _feedback_rows(engine, "a47_open") == 0
        # The form's GET has its own budget, and another address its own.
        assert (await client.get(url)).status_code == 200
        assert (await elsewhere.post(url, json={"rating": 5})).status_code == 201
    assert _feedback_rows(engine, "a47_open") == 1
