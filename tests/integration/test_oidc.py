"""Single sign-on (OpenID Connect, authorization code + PKCE) against a real provider over real HTTP.

The provider (tests/integration/oidc_provider.py) runs under uvicorn on a loopback port; TutorPulse runs over
ASGI at https://testserver (its cookies are Secure) on SQLite and PostgreSQL. The test plays the browser: it
follows TutorPulse's redirect to the provider and the provider's redirect back. The provider's token endpoint
checks the PKCE verifier, the client secret and the redirect URI, so a sign-in that succeeds proves all three.
"""
from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.actor import SESSION_COOKIE
from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.audit.models import AuditLog
from domain.auth import oidc
from domain.auth import service as auth_service
from domain.auth.models import AuthToken
from domain.users import service as user_service
from domain.users.models import User
from tests.integration.oidc_provider import OIDCProvider, serve
from tests.integration.web_auth import make_user

pytestmark = pytest.mark.integration
CLIENT_ID = "tutorpulse-test"
CLIENT_SECRET = "s3cret: with % and spaces"  # exercises the form-encoding of HTTP Basic client auth


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    idp = OIDCProvider(CLIENT_ID, CLIENT_SECRET)
    with serve(idp):
        yield idp


@pytest.fixture(autouse=True)
def _fresh_provider(provider: OIDCProvider) -> None:
    provider.reset()
    oidc.clear_caches()  # each test discovers and fetches keys itself


def sso_settings(settings: Settings, provider: OIDCProvider, **extra: object) -> Settings:
    return settings.model_copy(update={"oidc_issuer": provider.issuer, "oidc_client_id": CLIENT_ID,
                                       "oidc_client_secret": SecretStr(CLIENT_SECRET), **extra})


def app_for(settings: Settings) -> FastAPI:
    return create_app(settings)


@asynccontextmanager
async def tutorpulse(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def to_provider_and_back(client: httpx.AsyncClient) -> str:
    """The callback URL the provider sends the browser back to, after TutorPulse sent it there."""
    started = await client.get("/login/sso")
    assert started.status_code == 303, started.text
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(started.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["location"]
    assert callback.startswith("https://testserver/login/sso/callback?")
    return callback


def set_cookie(response: httpx.Response, name: str) -> str | None:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) <= 1, found
    return found[0] if found else None


def count(engine: Engine, model: type) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(model)).scalar_one()


async def test_full_sign_in(engine: Engine, settings: Settings, provider: OIDCProvider,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(engine, "people_ops", user_id="u_sso_ops", name="Olive Ops")
    provider.user.update(email="U_SSO_OPS@TutorPulse.example")  # matched case-insensitively
    async with tutorpulse(sso_settings(settings, provider)) as client:
        started = await client.get("/login/sso", params={"next": "/queue"})
        assert started.status_code == 303
        authorize = urlsplit(started.headers["location"])
        assert f"{authorize.scheme}://{authorize.netloc}" == provider.issuer and authorize.path == "/authorize"
        asked = parse_qs(authorize.query)
        assert asked["code_challenge_method"] == ["S256"] and asked["client_id"] == [CLIENT_ID]
        assert asked["redirect_uri"] == ["https://testserver/login/sso/callback"]
        flow_cookie = set_cookie(started, "tp_sso")
        assert flow_cookie is not None
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/login/sso", "Max-Age=600"):
            assert flag in flow_cookie

        async with httpx.AsyncClient() as browser:  # the provider signs the test user in and sends them back
            callback = (await browser.get(started.headers["location"])).headers["location"]
        done = await client.get(callback)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/queue"
        session = set_cookie(done, SESSION_COOKIE)
        assert session is not None
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", f"Max-Age={settings.session_minutes * 60}"):
            assert flag in session
        assert 'tp_sso=""' in (set_cookie(done, "tp_sso") or "")  # the flow is consumed
        assert provider.token_requests == 1 and not provider.codes  # the code was redeemed, once

        token = client.cookies[SESSION_COOKIE]
        with session_scope(engine) as db:
            resolved = auth_service.resolve(db, token, kind=auth_service.SESSION)
        assert resolved is not None and resolved[0].user_id == user.user_id
        account = await client.get("/account")
        assert account.status_code == 200 and "Olive Ops" in account.text

        again = await client.get(callback)  # replaying the callback: the flow cookie is gone
        assert again.status_code == 400
    secrets = [*provider.issued, token]
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert ours and not [m for m in ours for s in secrets if s in m], "a code or token reached the log"


async def test_wrong_state_is_400_before_any_token_request(engine: Engine, settings: Settings,
                                                           provider: OIDCProvider) -> None:
    make_user(engine, "people_ops", user_id="u_sso_ops")
    provider.user.update(email="u_sso_ops@tutorpulse.example")
    async with tutorpulse(sso_settings(settings, provider)) as client:
        callback = await to_provider_and_back(client)
        params = parse_qs(urlsplit(callback).query)
        forged = "/login/sso/callback?" + urlencode({"code": params["code"][0], "state": "attacker-state"})
        refused = await client.get(forged)
        assert refused.status_code == 400 and "state mismatch" in refused.text
        assert set_cookie(refused, SESSION_COOKIE) is None

        # A flow cookie rewritten to carry the attacker's state is refused: its signature no longer matches.
        await to_provider_and_back(client)
        payload, _, mac = client.cookies["tp_sso"].rpartition(".")
        flow = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        rewritten = base64.urlsafe_b64encode(json.dumps({**flow, "s": "attacker-state"}).encode()).decode()
        client.cookies.clear()
        client.cookies.set("tp_sso", f"{rewritten.rstrip('=')}.{mac}")
        refused = await client.get(forged)
        assert refused.status_code == 400 and "not started in this browser" in refused.text
    async with tutorpulse(sso_settings(settings, provider)) as stranger:  # a callback this browser never started
        assert (await stranger.get(callback)).status_code == 400
    assert provider.token_requests == 0
    assert count(engine, AuthToken) == 0


@pytest.mark.parametrize(("misbehaviour", "reason"), [
    ({"tamper_signature": True}, "signature does not verify"),
    ({"audience": "another-client"}, "issued for another client"),
    ({"nonce": "a-nonce-from-another-sign-in"}, "nonce does not match"),
    ({"expires_in": -600}, "expired"),
])
async def test_bad_id_token_is_401(engine: Engine, settings: Settings, provider: OIDCProvider,
                                   misbehaviour: dict, reason: str) -> None:
    make_user(engine, "admin", user_id="u_sso_admin")
    provider.user.update(email="u_sso_admin@tutorpulse.example")
    for name, value in misbehaviour.items():
        setattr(provider, name, value)
    async with tutorpulse(sso_settings(settings, provider)) as client:
        refused = await client.get(await to_provider_and_back(client))
    assert refused.status_code == 401, refused.text
    assert reason in refused.text and "Back to sign-in" in refused.text
    assert set_cookie(refused, SESSION_COOKIE) is None
    assert provider.token_requests == 1 and count(engine, AuthToken) == 0


async def test_unknown_email_is_403_and_creates_nothing(engine: Engine, settings: Settings,
                                                        provider: OIDCProvider) -> None:
    make_user(engine, "people_ops", user_id="u_sso_ops")
    provider.user.update(email="stranger@elsewhere.example")
    async with tutorpulse(sso_settings(settings, provider)) as client:
        refused = await client.get(await to_provider_and_back(client))
    assert refused.status_code == 403 and "does not create accounts" in refused.text
    assert count(engine, User) == 1 and count(engine, AuthToken) == 0
    with session_scope(engine) as db:
        assert user_service.by_email(db, "stranger@elsewhere.example") is None


@pytest.mark.parametrize(("situation", "expected"), [
    ("unverified", "has not verified your email"),
    ("inactive", "does not create accounts"),
    ("no_email", "did not share your email"),
])
async def test_refused_accounts_are_403(engine: Engine, settings: Settings, provider: OIDCProvider,
                                        situation: str, expected: str) -> None:
    make_user(engine, "people_ops", user_id="u_sso_ops")
    provider.user.update(email="u_sso_ops@tutorpulse.example")
    if situation == "unverified":
        provider.user["email_verified"] = False
    elif situation == "inactive":
        with session_scope(engine) as db:
            user_service.set_active(db, "u_sso_ops", False)
    else:
        del provider.user["email"]
    async with tutorpulse(sso_settings(settings, provider)) as client:
        refused = await client.get(await to_provider_and_back(client))
    assert refused.status_code == 403 and expected in refused.text
    assert count(engine, AuthToken) == 0


async def test_role_claim_updates_the_role(engine: Engine, settings: Settings, provider: OIDCProvider) -> None:
    make_user(engine, "people_ops", user_id="u_sso_ops")
    with session_scope(engine) as db:  # a session of the old role, which the role change must end
        old = auth_service.issue(db, db.get(User, "u_sso_ops"), kind=auth_service.SESSION, minutes=60)
    provider.user.update(email="u_sso_ops@tutorpulse.example", groups=["everyone", "admin"])
    async with tutorpulse(sso_settings(settings, provider, oidc_role_claim="groups")) as client:
        done = await client.get(await to_provider_and_back(client))
        assert done.status_code == 303 and done.headers["location"] == "/rules"  # the admin's home
        assert (await client.get("/rules")).status_code == 200
    with session_scope(engine) as db:
        assert db.get(User, "u_sso_ops").role == "admin"
        assert auth_service.resolve(db, old.token, kind=auth_service.SESSION) is None
        rows = db.execute(select(AuditLog).where(AuditLog.resource_type == "user")).scalars().all()
    assert [(r.resource_id, r.details["previous_role"], r.details["role"], r.details["via"]) for r in rows] == [
        ("u_sso_ops", "people_ops", "admin", "sso")]

    # Signing in again with the same claim changes nothing, so other sessions live on.
    async with tutorpulse(sso_settings(settings, provider, oidc_role_claim="groups")) as client:
        assert (await client.get(await to_provider_and_back(client))).status_code == 303
    assert count(engine, AuditLog) == 1


@pytest.mark.parametrize(("claim", "expected"), [
    ("tutor", "takes the tutor, student and service roles only from an administrator"),
    ("student", "takes the tutor, student and service roles only from an administrator"),
    ("wizard", "must name exactly one TutorPulse role"),
    (["admin", "ops_manager"], "must name exactly one TutorPulse role"),
])
async def test_role_claim_refusals(engine: Engine, settings: Settings, provider: OIDCProvider,
                                   claim: object, expected: str) -> None:
    make_user(engine, "people_ops", user_id="u_sso_ops")
    provider.user.update(email="u_sso_ops@tutorpulse.example", tp_role=claim)
    async with tutorpulse(sso_settings(settings, provider, oidc_role_claim="tp_role")) as client:
        refused = await client.get(await to_provider_and_back(client))
    assert refused.status_code == 403 and expected in refused.text
    with session_scope(engine) as db:
        assert db.get(User, "u_sso_ops").role == "people_ops"
    assert count(engine, AuthToken) == 0


async def test_rotated_signing_key_is_fetched(engine: Engine, settings: Settings, provider: OIDCProvider) -> None:
    make_user(engine, "people_ops", user_id="u_sso_ops")
    provider.user.update(email="u_sso_ops@tutorpulse.example")
    async with tutorpulse(sso_settings(settings, provider)) as client:
        assert (await client.get(await to_provider_and_back(client))).status_code == 303
        provider.rotate_key()  # the cached key set no longer holds the new kid
        client.cookies.clear()
        assert (await client.get(await to_provider_and_back(client))).status_code == 303


async def test_unset_issuer_is_404(settings: Settings, provider: OIDCProvider) -> None:
    assert settings.oidc_issuer is None
    async with tutorpulse(settings) as client:
        for path in ("/login/sso", "/login/sso/callback?code=x&state=y"):
            response = await client.get(path)
            assert response.status_code == 404 and "not configured" in response.text
    async with tutorpulse(settings.model_copy(update={"oidc_issuer": provider.issuer})) as client:
        response = await client.get("/login/sso")  # an issuer without a client id cannot work either
        assert response.status_code == 404 and "OIDC_CLIENT_ID" in response.text
