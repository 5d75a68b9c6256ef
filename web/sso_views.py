"""Single sign-on pages: GET /login/sso sends the browser to the OpenID Connect provider, GET /login/sso/callback
brings it back signed in. Both answer 404 while OIDC_ISSUER is unset (local accounts are the default).

SSO signs people in; it never creates accounts. The verified ``email`` claim must match an active account an
administrator made (`tutorpulse users create`). The flow's state, nonce and PKCE verifier ride in the short-lived
``tp_sso`` cookie (HttpOnly, SameSite=Lax so the provider's top-level redirect back still carries it), signed with
a key derived from the secret key: a browser cannot forge or alter it, and every callback consumes it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine

from api.actor import SESSION_COOKIE, Actor, client_address
from api.deps import EngineDep, SettingsDep
from api.policy import PublicActor
from api.ratelimit import rate_limited
from core.config import Settings
from core.db import session_scope
from core.keys import derive, process_keys
from domain.audit import service as audit_service
from domain.auth import oidc
from domain.auth import service as auth_service
from domain.users import service as user_service
from domain.users.models import Role
from web.auth_views import home_for, safe_next
from web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "tp_sso"
FLOW_PATH = "/login/sso"
FLOW_SECONDS = 600  # time allowed at the provider (typing a password, a second factor) before starting again
MAX_PARAM = 2048  # codes and states are short; refuse anything an anonymous caller pads out
# Tutor and student accounts must be linked to their record, which only an administrator can do; a service
# account is a machine. The provider may confirm these roles but never turn an account into one.
NOT_FROM_SSO = frozenset({Role.tutor.value, Role.student.value, Role.service.value})
NO_ACCOUNT = ("No active TutorPulse account uses the email address your sign-in provider confirmed. Single sign-on "
              "does not create accounts: ask an administrator to create yours (tutorpulse users create).")
RESTART = "Start again from the sign-in page."


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class PendingFlow:
    flow: oidc.Flow
    next_path: str | None


# --- the signed flow cookie ---------------------------------------------------------------------------------

def _mac(payload: str) -> str:
    return hmac.new(derive(process_keys().secret, "oidc"), payload.encode(), hashlib.sha256).hexdigest()


def seal(pending: PendingFlow, *, now: float | None = None) -> str:
    body = json.dumps({"s": pending.flow.state, "n": pending.flow.nonce, "v": pending.flow.verifier,
                       "x": pending.next_path, "t": int(now or time.time())}, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_mac(payload)}"


def unseal(value: str | None, *, now: float | None = None) -> PendingFlow | None:
    """The flow this browser started, or None: missing, altered, malformed or older than FLOW_SECONDS."""
    if not value or len(value) > 4096 or "." not in value:
        return None
    payload, _, mac = value.rpartition(".")
    if not hmac.compare_digest(_mac(payload).encode(), mac.encode("ascii", "replace")):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        flow = oidc.Flow(state=str(data["s"]), nonce=str(data["n"]), verifier=str(data["v"]))
        issued, next_path = int(data["t"]), data.get("x")
    except (ValueError, KeyError, TypeError):
        return None
    age = (now or time.time()) - issued
    if not 0 <= age <= FLOW_SECONDS + 5:
        return None
    return PendingFlow(flow=flow, next_path=next_path if isinstance(next_path, str) else None)


def _drop_flow_cookie(response: Response, settings: Settings) -> Response:
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=settings.cookie_secure)
    return response


# --- pages --------------------------------------------------------------------------------------------------

def _config(settings: Settings) -> oidc.ClientConfig:
    if not settings.oidc_issuer:
        raise HTTPException(status_code=404, detail="Single sign-on is not configured here: sign in with your "
                                                    "email and password.")
    try:
        return oidc.ClientConfig.from_settings(settings)
    except oidc.ConfigError as exc:
        log.warning("single sign-on is unavailable: %s", exc.message)
        raise HTTPException(status_code=exc.status, detail=exc.message) from None


def _error_page(request: Request, settings: Settings, status: int, message: str) -> Response:
    response = templates.TemplateResponse(request, "error.html", {
        "status": status, "message": f"{message} {RESTART}" if status < 500 else message,
        "back": ("/login", "Back to sign-in"),
    }, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return _drop_flow_cookie(response, settings)


def _callback_url(request: Request) -> str:
    # Must equal the redirect URI registered at the provider: https://<host>/login/sso/callback. Behind a TLS
    # proxy, uvicorn needs --proxy-headers (and --forwarded-allow-ips) so the scheme and host come out right.
    return str(request.url_for("sso_callback"))


@router.get("/login/sso", response_class=HTMLResponse, name="sso_start")
async def sso_start(request: Request, settings: SettingsDep, actor: PublicActor) -> Response:
    config = _config(settings)
    next_path = safe_next(request.query_params.get("next"))
    if actor is not None:  # already signed in, as GET /login does
        return RedirectResponse(next_path or home_for(actor.role), status_code=303)
    pending = PendingFlow(flow=oidc.Flow.new(), next_path=next_path)
    try:
        url = await oidc.start(config, pending.flow, redirect_uri=_callback_url(request))
    except oidc.OIDCError as exc:
        log.warning("single sign-on could not start: %s", exc.message)
        return _error_page(request, settings, exc.status, exc.message)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLOW_COOKIE, seal(pending), max_age=FLOW_SECONDS, path=FLOW_PATH, httponly=True,
                        samesite="lax", secure=settings.cookie_secure)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login/sso/callback", response_class=HTMLResponse, name="sso_callback",
            dependencies=[Depends(rate_limited("sso", "login_rate_limit"))])
async def sso_callback(request: Request, engine: EngineDep, settings: SettingsDep, actor: PublicActor) -> Response:
    config = _config(settings)
    source = client_address(request)
    query = request.query_params
    pending = unseal(request.cookies.get(FLOW_COOKIE))
    if pending is None:
        return _error_page(request, settings, 400, "This sign-in was not started in this browser, or took longer "
                                                   f"than {FLOW_SECONDS // 60} minutes.")
    state = query.get("state", "")
    if len(state) > MAX_PARAM or not hmac.compare_digest(state.encode("utf-8"), pending.flow.state.encode()):
        log.info("sso callback refused from %s: state does not match the flow cookie", source)
        return _error_page(request, settings, 400, "The sign-in response does not belong to the sign-in this "
                                                   "browser started (state mismatch).")
    if "error" in query:  # RFC 6749 4.1.2.1: the user declined, or the provider refused the request
        error = query["error"][:64]
        log.info("sso sign-in not completed at the provider (%s) from %s", error, source)
        return _error_page(request, settings, 401, f"Your sign-in provider did not sign you in ({error}).")
    code = query.get("code", "")
    if not code or len(code) > MAX_PARAM:
        return _error_page(request, settings, 400, "The sign-in response carries no code.")
    try:
        claims = await oidc.complete(config, pending.flow, code=code, redirect_uri=_callback_url(request))
        user_id, role, token = await run_in_threadpool(_sign_in, engine, settings, claims, source,
                                                       _previous_session(request, actor))
    except oidc.OIDCError as exc:
        log.warning("sso sign-in refused from %s: %s", source, exc.message)
        return _error_page(request, settings, exc.status, exc.message)
    except Refused as exc:
        log.info("sso sign-in refused from %s (%s)", source, exc.status)
        return _error_page(request, settings, exc.status, exc.message)
    log.info("page sign-in via sso: %s (%s) from %s", user_id, role, source)
    response = RedirectResponse(pending.next_path or home_for(role), status_code=303)
    # The same cookie POST /login sets (web.auth_views).
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_minutes * 60, path="/",
                        httponly=True, samesite="lax", secure=settings.cookie_secure)
    response.headers["Cache-Control"] = "no-store"
    return _drop_flow_cookie(response, settings)


def _previous_session(request: Request, actor: Actor | None) -> str | None:
    return request.cookies.get(SESSION_COOKIE) if actor is not None and actor.via == auth_service.SESSION else None


# --- the account --------------------------------------------------------------------------------------------

def verified_email(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise Refused(403, "Your sign-in provider did not share your email address, which TutorPulse needs to find "
                           "your account (the 'email' scope and claim).")
    # Absent means the provider does not say; an explicit false means anyone could have typed the address.
    if claims.get("email_verified") in (False, "false"):
        raise Refused(403, "Your sign-in provider has not verified your email address, so TutorPulse cannot match "
                           "it to an account. Verify it with the provider first.")
    return email


def claimed_role(settings: Settings, claims: dict[str, Any]) -> str | None:
    """The role the provider assigns (settings.oidc_role_claim), None when unset or the claim is absent."""
    name = settings.oidc_role_claim
    if not name or claims.get(name) is None:
        return None
    value = claims[name]
    values = value if isinstance(value, list) else [value]
    # A group list may hold other groups too; exactly one of them may be a TutorPulse role.
    roles = {v for v in values if isinstance(v, str) and v in user_service.ROLE_NAMES}
    if len(roles) != 1:
        shown = ", ".join(sorted(roles)) if roles else repr(str(value)[:60])
        raise Refused(403, f"Your sign-in provider's '{name}' claim must name exactly one TutorPulse role (one of "
                           f"{', '.join(user_service.ROLE_NAMES)}); it holds {shown}. Ask your administrator.")
    return roles.pop()


def _sign_in(engine: Engine, settings: Settings, claims: dict[str, Any], source: str | None,
             previous_session: str | None) -> tuple[str, str, str]:
    """(user id, role, new session token) for the account behind the verified claims; Refused otherwise."""
    email = verified_email(claims)
    role = claimed_role(settings, claims)
    # Committed before the redirect goes out, like POST /login: the browser's next request presents the cookie.
    with session_scope(engine) as db:
        user = user_service.by_email(db, email)
        if user is None or not user.is_active:
            raise Refused(403, NO_ACCOUNT)
        if role is not None and role != user.role:
            if role in NOT_FROM_SSO:
                raise Refused(403, f"Your sign-in provider makes you a {role}, but TutorPulse takes the tutor, "
                                   "student and service roles only from an administrator, who links the account "
                                   "to its record (tutorpulse users set-role). Your account was not changed.")
            before = user.role
            user_service.set_role(db, user.user_id, role)  # also ends the sessions the old role had
            # Ids and roles only, as the admin API's audit rows (domain.users.accounts): the email is PII.
            audit_service.record(db, actor=user.user_id, action="write", resource_type="user",
                                 resource_id=user.user_id, source=source,
                                 details={"change": "role", "role": role, "previous_role": before, "via": "sso",
                                          "claim": settings.oidc_role_claim})
        issued = auth_service.issue(db, user, kind=auth_service.SESSION, minutes=settings.session_minutes,
                                    source=source)
        if previous_session:
            auth_service.revoke(db, previous_session)  # one browser, one session
        return user.user_id, user.role, issued.token
