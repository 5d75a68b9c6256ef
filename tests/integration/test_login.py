"""The sign-in form, the page session cookie and sign-out, over real ASGI (httpx) on SQLite and PostgreSQL.

https://testserver throughout: the session cookie is Secure, and httpx, like a browser, sends it over https only.
"""
from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import date
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.auth.models import AuthToken
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.users import service as user_service
from tests.integration.web_auth import PASSWORD, make_user

FAILED = "That email and password do not match an active account."
EVIL = ("//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
        "javascript:alert(1)", "evil.example", "/login?next=//evil.example")


@pytest.fixture
def app(engine: Engine, settings: Settings) -> FastAPI:
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id="t1", name="Tia Tutor", email="tia@example.com", onboarding_date=date(2025, 1, 6)))
        db.add(Student(student_id="s1", name="Sam Student"))
    for role in ("ops_manager", "people_ops", "admin", "service"):
        make_user(engine, role)
    make_user(engine, "tutor", tutor_id="t1")
    make_user(engine, "student", student_id="s1")
    return create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1", "login_rate_limit": "50/minute"}))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as c:
        yield c


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token in the form"
    return match.group(1)


def _set_cookie(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, (name, response.headers.get_list("set-cookie"))
    return found[0]


async def _sign_in(client: httpx.AsyncClient, user_id: str, *, password: str = PASSWORD, next_: str | None = None,
                   ) -> httpx.Response:
    form = await client.get("/login", params={"next": next_} if next_ else None)
    assert form.status_code == 200
    data = {"email": f"{user_id}@tutorpulse.example", "password": password, "csrf_token": _form_token(form.text)}
    if next_ is not None:
        data["next"] = next_
    return await client.post("/login", data=data)


async def test_sign_in_sets_a_secure_httponly_samesite_session_cookie(client, engine, settings):
    form = await client.get("/login")
    assert form.status_code == 200 and 'type="password"' in form.text and 'name="csrf_token"' in form.text
    assert form.headers["cache-control"] == "no-store"
    nonce = SimpleCookie(_set_cookie(form, "tp_login"))["tp_login"]
    assert nonce["httponly"] and nonce["secure"] and nonce["samesite"].lower() == "lax" and nonce["path"] == "/login"
    assert nonce.value not in form.text  # the form holds an HMAC of the nonce, never the nonce itself
    assert 'id="sso-link"' not in form.text  # no OIDC provider configured: local accounts only

    signed_in = await client.post("/login", data={"email": "u_ops_manager@tutorpulse.example",
                                                  "password": PASSWORD, "csrf_token": _form_token(form.text)})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    raw = _set_cookie(signed_in, "tp_session")
    cookie = SimpleCookie(raw)["tp_session"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == settings.session_minutes * 60
    with Session(engine) as db:
        [row] = db.execute(select(AuthToken)).scalars().all()
    assert row.kind == "session" and row.user_id == "u_ops_manager" and row.revoked_at is None
    assert cookie.value not in row.token_hash  # only a keyed hash of the token is stored

    home = await client.get("/")
    assert home.status_code == 200 and "Signed in as" in home.text
    assert (await client.get("/login")).headers["location"] == "/"  # signed in already: no form again


async def test_each_role_lands_on_its_own_page(app: FastAPI):
    landing = {"ops_manager": "/", "people_ops": "/", "admin": "/rules", "tutor": "/portal", "student": "/account",
               "service": "/account"}
    for role, where in landing.items():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as c:
            response = await _sign_in(c, f"u_{role}")
            assert (response.status_code, response.headers["location"]) == (303, where), role
            page = await c.get(where)
            assert page.status_code == 200, role


async def test_wrong_credentials_get_one_generic_401_and_no_session(client, engine):
    with session_scope(engine) as db:
        user_service.set_active(db, "u_people_ops", False)
    attempts = [("u_ops_manager", "not the right password"),  # wrong password
                ("u_nobody", PASSWORD),                      # no such account
                ("u_people_ops", PASSWORD)]                  # right password, deactivated account
    for user_id, password in attempts:
        response = await _sign_in(client, user_id, password=password)
        assert response.status_code == 401, user_id
        assert FAILED in response.text and password not in response.text
        assert f'value="{user_id}@tutorpulse.example"' in response.text  # the email is kept for a retry
        assert "tp_session" not in response.headers.get("set-cookie", "")
    with Session(engine) as db:
        assert db.execute(select(AuthToken)).scalars().all() == []
    empty = await client.post("/login", data={"email": "u_admin@tutorpulse.example", "password": "",
                                              "csrf_token": _form_token((await client.get("/login")).text)})
    assert empty.status_code == 422 and "Enter your password." in empty.text


async def test_sign_in_without_the_forms_csrf_token_is_refused(client, engine, app):
    data = {"email": "u_admin@tutorpulse.example", "password": PASSWORD}
    assert (await client.post("/login", data=data)).status_code == 403  # no token, no nonce cookie
    await client.get("/login")
    assert (await client.post("/login", data=data)).status_code == 403  # nonce cookie, no token
    assert (await client.post("/login", data={**data, "csrf_token": "0" * 64})).status_code == 403
    # A token from another browser's form does not match this browser's nonce.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as other:
        foreign = _form_token((await other.get("/login")).text)
    refused = await client.post("/login", data={**data, "csrf_token": foreign})
    assert refused.status_code == 403 and "expired" in refused.text
    with Session(engine) as db:
        assert db.execute(select(AuthToken)).scalars().all() == []
    # Each rendering of the form starts a new nonce: the refusal page's own form works.
    ok = await client.post("/login", data={**data, "csrf_token": _form_token(refused.text)})
    assert ok.status_code == 303


async def test_sign_out_revokes_the_session(client, engine):
    assert (await _sign_in(client, "u_admin")).status_code == 303
    [old] = [c for c in client.cookies.jar if c.name == "tp_session"]
    page = await client.get("/account")
    assert page.status_code == 200 and "Signed in as <strong>U_Admin</strong> (Admin)" in page.text
    assert (await client.post("/logout")).status_code == 403  # the sign-out form's CSRF token is required too
    out = await client.post("/logout", data={"csrf_token": _form_token(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'tp_session=""' in _set_cookie(out, "tp_session") and "tp_session" not in client.cookies
    with Session(engine) as db:
        [row] = db.execute(select(AuthToken)).scalars().all()
    assert row.revoked_at is not None

    client.cookies.jar.set_cookie(old)  # a copy of the cookie taken before sign-out signs nobody in
    again = await client.get("/rules")
    assert again.status_code == 303 and again.headers["location"] == "/login?next=/rules"
    assert 'tp_session=""' in _set_cookie(again, "tp_session")  # the dead cookie is cleared on the way
    client.cookies.jar.set_cookie(old)
    login = await client.get("/login")  # a dead cookie must not lock anyone out of the sign-in form
    assert login.status_code == 303 and login.headers["location"] == "/login"
    assert (await client.get("/login")).status_code == 200


async def test_next_goes_back_to_same_site_paths_only(client, app):
    signed = await _sign_in(client, "u_people_ops", next_="/queue?risk=High&due=overdue")
    assert signed.headers["location"] == "/queue?risk=High&due=overdue"
    for target in EVIL:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as c:
            form = await c.get("/login", params={"next": target})
            assert f'value="{target}"' not in form.text, target
            response = await c.post("/login", data={"email": "u_people_ops@tutorpulse.example", "password": PASSWORD,
                                                    "csrf_token": _form_token(form.text), "next": target})
            assert (response.status_code, response.headers["location"]) == (303, "/"), target


async def test_tutor_is_refused_staff_pages_and_anonymous_is_sent_to_sign_in(client):
    anonymous = await client.get("/")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/"
    assert (await client.get("/account")).headers["location"] == "/login?next=/account"
    assert (await _sign_in(client, "u_tutor")).headers["location"] == "/portal"
    for path in ("/", "/queue", "/rules"):
        refused = await client.get(path)
        assert refused.status_code == 403 and "Not allowed" in refused.text, path
        assert "Churn score" not in refused.text
    assert (await client.get("/account")).status_code == 200


async def test_sign_in_is_rate_limited(engine: Engine, settings: Settings, app: FastAPI):
    limited = create_app(settings.model_copy(update={"login_rate_limit": "3/minute"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="https://testserver") as c:
        for _ in range(3):
            assert (await _sign_in(c, "u_admin", password="wrong password here")).status_code == 401
        blocked = await _sign_in(c, "u_admin")  # the right password, too late
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert "tp_session" not in blocked.headers.get("set-cookie", "")


async def test_password_never_in_a_response_or_the_log(client, caplog):
    secret = "Sekrit-Passphrase-4-Logs"
    caplog.set_level(logging.DEBUG)
    bodies = [(await _sign_in(client, "u_admin", password=secret)).text,
              (await _sign_in(client, "u_nobody", password=secret)).text,
              (await client.post("/login", data={"email": "u_admin@tutorpulse.example", "password": secret})).text,
              (await client.post("/login", data={"email": "x@y.z", "password": secret * 60})).text,  # too long: 422
              (await client.post("/api/v1/auth/token", data={"username": "u_admin@tutorpulse.example",
                                                             "password": secret})).text]
    signed = await _sign_in(client, "u_admin")
    bodies += [signed.text, (await client.get(signed.headers["location"])).text]
    for body in bodies:
        assert secret not in body and PASSWORD not in body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "page sign-in refused" in logged  # the log did capture the attempts
    assert secret not in logged and PASSWORD not in logged


async def test_single_sign_on_is_offered_when_configured(engine: Engine, settings: Settings, app: FastAPI):
    sso = create_app(settings.model_copy(update={"oidc_issuer": "https://id.example", "oidc_client_id": "tp"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sso), base_url="https://testserver") as c:
        form = await c.get("/login", params={"next": "/queue?risk=High"})
    assert '<a href="/login/sso?next=%2Fqueue%3Frisk%3DHigh" id="sso-link">' in form.text
