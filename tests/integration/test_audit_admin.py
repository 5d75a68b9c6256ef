"""The admin API and pages: audit log search (/api/v1/audit, /admin/audit) and accounts (/api/v1/users,
/admin/users), over real ASGI on SQLite and PostgreSQL, with real accounts, bearer tokens and page sessions."""
from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from api.actor import SESSION_COOKIE
from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.audit import service as audit_service
from domain.audit.models import AuditLog
from domain.auth import service as auth_service
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.users.models import Role, User
from tests.auth import PASSWORD, account, bearer, page_session

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NEW_PASSWORD = "a brand new passphrase 42"


def _routes(app: FastAPI) -> list:
    # FastAPI 0.16x keeps included routers unflattened in app.routes; this walks into them.
    return list(iter_route_contexts(app.routes))


@pytest.fixture
def app(engine: Engine, settings: Settings) -> FastAPI:
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id="t1", name="Tia Tutor", email="tia@example.com", onboarding_date=date(2025, 1, 6)))
        db.add(Student(student_id="s1", name="Sam Student"))
    return create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as c:
        yield c


def _seed_audit(engine: Engine) -> list[tuple[str, str, str, str]]:
    """Ten rows a minute apart: (actor, action, resource_type, resource_id), oldest first."""
    rows = [("u_ops", "read", "tutor_risk", f"tutor_id=t_{i}") for i in (1, 10, 2)] + \
           [("u_people", "write", "student_data", "student_id=s_1"), ("u_people", "read", "student_data", "s_%x"),
            ("system:retention", "write", "retention", "run-1")] + \
           [("u_ops", "read", "tutor_record", f"tutor_id=t_1{i}") for i in range(4)]
    with session_scope(engine) as db:
        for n, (actor, action, kind, rid) in enumerate(rows):
            audit_service.record(db, actor=actor, action=action, resource_type=kind, resource_id=rid,
                                 source="10.0.0.7", details={"n": n}, at=T0 + timedelta(minutes=n))
    return rows


async def _search(client: httpx.AsyncClient, headers: dict, **params: object) -> dict:
    response = await client.get("/api/v1/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_audit_search_filters_pages_newest_first_and_records_itself(client: httpx.AsyncClient,
                                                                          engine: Engine) -> None:
    seeded = _seed_audit(engine)
    admin = bearer(engine, account(engine, "admin"))
    everything = await _search(client, admin, limit=500)
    assert everything["total"] == len(seeded) and everything["next_offset"] is None
    assert [i["details"]["n"] for i in everything["items"]] == list(range(len(seeded)))[::-1]  # newest first

    def ns(body: dict) -> list[int]:
        return [i["details"]["n"] for i in body["items"]]

    assert ns(await _search(client, admin, actor="u_people")) == [4, 3]
    assert ns(await _search(client, admin, action="write")) == [5, 3]
    assert ns(await _search(client, admin, resource_type="tutor_risk")) == [2, 1, 0]
    # A prefix: t_1 matches t_1 and t_10 (and t_10..t_13 of another type), never t_2.
    assert ns(await _search(client, admin, resource_id="tutor_id=t_1", resource_type="tutor_risk")) == [1, 0]
    assert ns(await _search(client, admin, resource_id="tutor_id=t_1")) == [9, 8, 7, 6, 1, 0]
    assert ns(await _search(client, admin, resource_id="s_%")) == [4]  # "%" is a character, not a wildcard
    assert ns(await _search(client, admin, resource_id="s_")) == [4]
    assert ns(await _search(client, admin, resource_id="%")) == []
    window = await _search(client, admin, since=(T0 + timedelta(minutes=2)).isoformat(),
                           until=(T0 + timedelta(minutes=4)).isoformat())
    assert ns(window) == [4, 3, 2]  # both ends inclusive
    # Another zone, same instant.
    assert ns(await _search(client, admin, since="2026-11-20T04:08:00-05:00", until="2026-11-20T10:00:00Z")) == [9, 8]

    pages, offset = [], 0
    while offset is not None:
        body = await _search(client, admin, limit=3, offset=offset, resource_type="tutor_record")
        assert body["total"] == 4 and body["limit"] == 3
        pages.append(ns(body))
        offset = body["next_offset"]
    assert pages == [[9, 8, 7], [6]]
    assert (await _search(client, admin, offset=40))["items"] == []

    for params, field in (({"since": (T0 + timedelta(hours=1)).isoformat(), "until": T0.isoformat()}, "since"),
                          ({"since": "2026-11-20T09:00:00"}, "since"), ({"limit": 501}, "limit"),
                          ({"limit": 0}, "limit"), ({"offset": -1}, "offset"), ({"action": "delete"}, "action"),
                          ({"actor": "u\x00ops"}, "actor")):
        refused = await client.get("/api/v1/audit", params=params, headers=admin)
        assert refused.status_code == 422, (params, refused.text)
        assert ["query", field] in [e["loc"] for e in refused.json()["detail"]], refused.text

    # Every answered search left a row of its own (refused ones did not), naming its filters.
    searches = await _search(client, admin, resource_type="audit_log", limit=500)
    answered = 14
    assert searches["total"] == answered
    assert {i["actor"] for i in searches["items"]} == {"u_test_admin"}
    assert searches["items"][-1]["details"]["filters"] == {}
    assert {"resource_id": "s_%"} in [i["details"]["filters"] for i in searches["items"]]
    assert all(i["details"]["via"] == "api" and i["action"] == "read" for i in searches["items"])


async def test_only_admins_reach_the_admin_api_and_pages(client: httpx.AsyncClient, engine: Engine) -> None:
    account(engine, "admin")
    calls = [("GET", "/api/v1/audit", None), ("GET", "/api/v1/users", None),
             ("POST", "/api/v1/users", {"email": "x@example.test", "name": "X", "role": "service"}),
             ("POST", "/api/v1/users/u_test_admin/role", {"role": "service"}),
             ("POST", "/api/v1/users/u_test_admin/active", {"active": False}),
             ("GET", "/admin/audit", None), ("GET", "/admin/users", None)]
    links = {Role.tutor: {"tutor_id": "t1"}, Role.student: {"student_id": "s1"}}
    for role in (r for r in Role if r != Role.admin):
        headers = bearer(engine, account(engine, role.value, **links.get(role, {})))
        for method, path, body in calls:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (role, method, path, response.text)
    for method, path, body in calls:
        anonymous = await client.request(method, path, json=body)
        expected = 401 if path.startswith("/api/") else 303  # pages send the browser to sign in
        assert anonymous.status_code == expected, (method, path)
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).select_from(AuditLog)).scalar_one() == 0  # nothing got through
        assert db.get(User, "u_test_admin").is_active


async def test_no_route_changes_audit_rows_and_the_database_refuses(app: FastAPI, engine: Engine) -> None:
    audit_routes = [r for r in _routes(app) if "audit" in (r.path or "")]
    assert {r.path for r in audit_routes} >= {"/api/v1/audit", "/admin/audit"}
    assert all(set(r.methods) <= {"GET", "HEAD"} for r in audit_routes)
    _seed_audit(engine)
    for change in (update(AuditLog).values(actor="someone_else"), delete(AuditLog)):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as db:
            db.execute(change)
    with session_scope(engine) as db:
        row = db.execute(select(AuditLog).limit(1)).scalar_one()
        row.details = {"tampered": True}
        with pytest.raises(DBAPIError, match="append-only"):
            db.flush()
        db.rollback()
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).select_from(AuditLog).where(
            AuditLog.actor == "someone_else")).scalar_one() == 0
        assert db.execute(text("select count(*) from audit_log")).scalar_one() == 10


async def test_users_api_create_role_deactivate(client: httpx.AsyncClient, engine: Engine,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = bearer(engine, account(engine, "admin"))
    body = {"email": "Tia.Tutor@Example.test", "name": "Tia Tutor", "role": "tutor", "password": NEW_PASSWORD,
            "tutor_id": "t1"}
    created = await client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["role"] == "tutor" and user["tutor_id"] == "t1" and user["is_active"] and user["has_password"]
    assert "password" not in user and "password_hash" not in user and NEW_PASSWORD not in created.text
    signed_in = await client.post("/api/v1/auth/token", data={"username": body["email"], "password": NEW_PASSWORD})
    assert signed_in.status_code == 200
    token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=token)).json()["role"] == "tutor"

    refusals = [({**body, "tutor_id": "t1"}, "email"),  # the same address again
                ({**body, "email": "new@example.test", "tutor_id": None}, "tutor_id"),
                ({**body, "email": "new@example.test", "tutor_id": "t_nobody"}, "tutor_id"),
                ({**body, "email": "new@example.test", "role": "student", "tutor_id": None, "student_id": "s_x"},
                 "student_id"),
                ({**body, "email": "new@example.test", "password": "short pw"}, "password"),
                ({**body, "email": "no-at-sign"}, "email"), ({**body, "role": "overlord"}, "role")]
    for bad, field in refusals:
        refused = await client.post("/api/v1/users", json=bad, headers=admin)
        assert refused.status_code == 422, (bad, refused.text)
        assert ["body", field] in [e["loc"] for e in refused.json()["detail"]], (field, refused.text)
        assert NEW_PASSWORD not in refused.text and "short pw" not in refused.text

    listed = await client.get("/api/v1/users", params={"role": "tutor"}, headers=admin)
    assert [u["user_id"] for u in listed.json()] == [user["user_id"]]
    assert "password_hash" not in listed.text and "$argon2" not in listed.text
    assert len((await client.get("/api/v1/users", headers=admin)).json()) == 2

    uid = user["user_id"]
    bad_role = await client.post(f"/api/v1/users/{uid}/role", json={"role": "student"}, headers=admin)
    assert bad_role.status_code == 422 and bad_role.json()["detail"][0]["loc"] == ["body", "student_id"]
    assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 200  # a refusal changes nothing
    changed = await client.post(f"/api/v1/users/{uid}/role", json={"role": "people_ops"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["role"] == "people_ops" and changed.json()["tutor_id"] is None
    assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 401  # the old role's token ended

    with session_scope(engine) as db:
        fresh = auth_service.issue(db, db.get(User, uid), kind=auth_service.BEARER, minutes=60).token
    with session_scope(engine) as db:
        assert auth_service.resolve(db, fresh, kind=auth_service.BEARER) is not None
    off = await client.post(f"/api/v1/users/{uid}/active", json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["is_active"] is False
    with session_scope(engine) as db:
        assert auth_service.resolve(db, fresh, kind=auth_service.BEARER) is None
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 401
    again = await client.post("/api/v1/auth/token", data={"username": body["email"], "password": NEW_PASSWORD})
    assert again.status_code == 401

    assert (await client.post("/api/v1/users/u_nobody/active", json={"active": True}, headers=admin)).status_code == 404
    assert (await client.post("/api/v1/users/u_nobody/role", json={"role": "admin"}, headers=admin)).status_code == 404
    last = await client.post("/api/v1/users/u_test_admin/active", json={"active": False}, headers=admin)
    assert last.status_code == 409 and "only active admin" in last.json()["detail"]
    demote = await client.post("/api/v1/users/u_test_admin/role", json={"role": "service"}, headers=admin)
    assert demote.status_code == 409

    with session_scope(engine) as db:
        changes = db.execute(select(AuditLog).where(AuditLog.resource_type == "user", AuditLog.resource_id == uid)
                             .order_by(AuditLog.audit_id)).scalars().all()
        assert [(r.actor, r.details["change"]) for r in changes] == [
            ("u_test_admin", "create"), ("u_test_admin", "role"), ("u_test_admin", "deactivate")]
        raw = db.execute(text("select details from audit_log")).scalars().all()
    assert NEW_PASSWORD not in caplog.text and "short pw" not in caplog.text
    assert not any(NEW_PASSWORD in str(d) or "Tia" in str(d) for d in raw)  # no password, no PII in the trail


class _Forms(HTMLParser):
    """Collects every form's method, its hidden csrf_token, the input ids and the label targets of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.inputs: list[str | None] = []
        self.labels: set[str] = set()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "style" in a or tag == "style" or (tag == "script" and "src" not in a) or any(k.startswith("on") for k in a):
            self.inline.append(tag)
        if tag == "form":
            self.forms.append({"method": a.get("method", "get"), "csrf": None})
        elif tag == "input" and a.get("type") == "hidden" and a.get("name") == "csrf_token" and self.forms:
            self.forms[-1]["csrf"] = a.get("value")
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.inputs.append(a.get("id"))
        elif tag == "label" and a.get("for"):
            self.labels.add(a["for"])


def _page(html: str) -> _Forms:
    parsed = _Forms()
    parsed.feed(html)
    return parsed


async def test_admin_pages_search_create_change_role_and_deactivate(client: httpx.AsyncClient,
                                                                    engine: Engine) -> None:
    _seed_audit(engine)
    cookie, csrf = page_session(engine, account(engine, "admin"))
    client.cookies.set(SESSION_COOKIE, cookie)
    audit = await client.get("/admin/audit", params={"resource_type": "tutor_risk", "limit": "50"})
    assert audit.status_code == 200, audit.text
    assert audit.text.count("tutor_id=t_") == 3 and "3 rows" in audit.text
    parsed = _page(audit.text)
    assert not parsed.inline and all(i in parsed.labels for i in parsed.inputs)
    backwards = await client.get("/admin/audit", params={"since": "2026-11-21T00:00", "until": "2026-11-20T00:00"})
    assert backwards.status_code == 422 and 'aria-invalid="true"' in backwards.text and "after until" in backwards.text
    assert (await client.get("/admin/audit", params={"since": "yesterday"})).status_code == 422
    paged = await client.get("/admin/audit", params={"limit": "50", "since": "2026-11-20T09:05",
                                                        "until": "2026-11-20T10:00"})
    assert paged.status_code == 200 and "5 rows" in paged.text  # datetime-local input is read as UTC
    first = await client.get("/admin/audit", params={"resource_type": "tutor_record", "limit": "3"})
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older and "showing 1–3" in first.text and 'rel="prev"' not in first.text
    second = await client.get(html.unescape(older.group(1)))
    assert "showing 4–4" in second.text and "tutor_id=t_10" in second.text and 'rel="next"' not in second.text

    users = await client.get("/admin/users")
    assert users.status_code == 200
    parsed = _page(users.text)
    posts = [f for f in parsed.forms if f["method"] == "post"]
    assert posts and all(f["csrf"] == csrf for f in posts)
    assert not parsed.inline and all(i in parsed.labels for i in parsed.inputs), (parsed.inputs, parsed.labels)

    form = {"email": "sam@example.test", "name": "Sam Student", "role": "student", "password": NEW_PASSWORD,
            "student_id": "s1", "tutor_id": ""}
    assert (await client.post("/admin/users", data=form)).status_code == 403  # no CSRF token
    refused = await client.post("/admin/users", data={**form, "student_id": "", "csrf_token": csrf})
    assert refused.status_code == 422 and "student record" in refused.text and NEW_PASSWORD not in refused.text
    assert 'value="sam@example.test"' in refused.text  # what was typed comes back, the password does not
    made = await client.post("/admin/users", data={**form, "csrf_token": csrf})
    assert made.status_code == 303, made.text
    with session_scope(engine) as db:
        sam = next(u for u in db.execute(select(User)).scalars() if u.email == "sam@example.test")
    follow = await client.get(made.headers["location"])
    assert "Account created" in follow.text and sam.user_id in follow.text

    role = await client.post(f"/admin/users/{sam.user_id}/role",
                             data={"role": "tutor", "tutor_id": "t1", "student_id": "s1", "csrf_token": csrf})
    assert role.status_code == 303
    no_link = await client.post(f"/admin/users/{sam.user_id}/role", data={"role": "tutor", "csrf_token": csrf})
    assert no_link.status_code == 422 and "tutor id" in no_link.text
    with session_scope(engine) as db:
        sam_token = auth_service.issue(db, db.get(User, sam.user_id), kind=auth_service.BEARER, minutes=60).token
    off = await client.post(f"/admin/users/{sam.user_id}/active", data={"active": "false", "csrf_token": csrf})
    assert off.status_code == 303
    with session_scope(engine) as db:
        sam = db.get(User, sam.user_id)
        assert (sam.role, sam.tutor_id, sam.student_id, sam.is_active) == ("tutor", "t1", None, False)
        assert auth_service.resolve(db, sam_token, kind=auth_service.BEARER) is None
        page_reads = db.execute(select(AuditLog).where(AuditLog.resource_type == "audit_log")).scalars().all()
        assert len(page_reads) == 4 and all(r.details["via"] == "page" for r in page_reads)  # refused ones: none
    last = await client.post("/admin/users/u_test_admin/active", data={"active": "false", "csrf_token": csrf})
    assert last.status_code == 409 and "only active admin" in last.text
    nobody = await client.post("/admin/users/u_nobody/active", data={"active": "true", "csrf_token": csrf})
    assert nobody.status_code == 404 and "no user u_nobody" in nobody.text
    assert PASSWORD not in users.text
