"""Sign-in, sign-out and the account page for the server-rendered pages.

The sign-in form is CSRF-protected before any session exists (a "login CSRF" would sign a victim into the
attacker's account): GET /login sets a random nonce in the HttpOnly ``tp_login`` cookie and puts a keyed HMAC of
it in the form; POST /login accepts only the pair. A session cookie holds a fresh 256-bit token (domain.auth),
so signing in never reuses an id an attacker could have planted.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.actor import CSRF_FIELD, SESSION_COOKIE, client_address, credentials
from api.deps import EngineDep, SettingsDep
from api.policy import AnyActor, PublicActor
from api.ratelimit import rate_limited
from core.config import Settings
from core.db import session_scope
from core.keys import derive, process_keys
from domain.auth import service as auth_service
from domain.users.models import Role
from web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "tp_login"
LOGIN_COOKIE_SECONDS = 3600  # a sign-in form left open longer than this is refused and shown again
MAX_PASSWORD = 1024  # argon2 hashes any length: cap what an anonymous caller can make the server hash
FAILED = "That email and password do not match an active account."
STALE = "The sign-in form expired. Enter your email and password again."
HOME_BY_ROLE = {Role.ops_manager: "/", Role.people_ops: "/", Role.admin: "/rules", Role.tutor: "/portal"}
ACCOUNT_PAGE = "/account"


def login_token(nonce: str) -> str:
    return hmac.new(derive(process_keys().secret, "login-csrf"), nonce.encode(), hashlib.sha256).hexdigest()


def login_token_ok(nonce: str | None, presented: str | None) -> bool:
    return bool(nonce and presented) and hmac.compare_digest(login_token(nonce or ""), presented or "")


def safe_next(value: str | None) -> str | None:
    """A same-site path to return to after sign-in, or None. Refuses anything a browser could read as another
    host: //host and /\\host (protocol-relative), schemes, and control characters that browsers strip."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return None
    return value


def home_for(role: str) -> str:
    return HOME_BY_ROLE.get(role, ACCOUNT_PAGE)


def _login_page(request: Request, settings: Settings, *, status: int = 200, error: str | None = None,
                email: str = "", next_path: str | None = None) -> Response:
    nonce = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(request, "login.html", {
        "login_csrf": login_token(nonce), "error": error, "email": email[:254], "next_path": next_path,
        # Single sign-on (web.sso_views) is offered only where an OIDC provider is configured.
        "sso_url": ("/login/sso" + (f"?{urlencode({'next': next_path})}" if next_path else ""))
                   if settings.oidc_issuer else None,
    }, status_code=status)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_SECONDS, path="/login", httponly=True,
                        samesite="lax", secure=settings.cookie_secure)
    # Browsers must not keep a page holding a CSRF token (or the email typed) in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, actor: PublicActor) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if actor is not None:  # already signed in: go where sign-in would have gone
        return RedirectResponse(next_path or home_for(actor.role), status_code=303)
    return _login_page(request, settings, next_path=next_path)


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(rate_limited("login", "login_rate_limit"))])
def login(request: Request, engine: EngineDep, settings: SettingsDep, actor: PublicActor,
          email: Annotated[str, Form(max_length=254)] = "",
          password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
          csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
          next_: Annotated[str, Form(alias="next")] = "") -> Response:
    next_path = safe_next(next_)
    if actor is None and not login_token_ok(request.cookies.get(LOGIN_COOKIE), csrf_token):
        # (A signed-in caller got here past the Policy, which checked the session's CSRF token instead.)
        return _login_page(request, settings, status=403, error=STALE, email=email, next_path=next_path)
    if not email.strip() or not password:
        field = "email" if not email.strip() else "password"
        return _login_page(request, settings, status=422, error=f"Enter your {field}.", email=email,
                           next_path=next_path)
    source = client_address(request)
    # Committed before the redirect goes out (a DbDep commits after the response is sent): the browser's very
    # next request already presents the new cookie.
    with session_scope(engine) as db:
        user = auth_service.authenticate(db, email, password)
        if user is not None:
            issued = auth_service.issue(db, user, kind=auth_service.SESSION, minutes=settings.session_minutes,
                                        source=source)
            if actor is not None and actor.via == auth_service.SESSION:
                auth_service.revoke(db, request.cookies.get(SESSION_COOKIE, ""))  # one browser, one session
    if user is None:
        # One message for unknown email, wrong password and inactive account. Neither the password nor the email
        # goes to the log (the address is personal data); the source is what shows someone guessing.
        log.info("page sign-in refused from %s", source)
        return _login_page(request, settings, status=401, error=FAILED, email=email, next_path=next_path)
    log.info("page sign-in: %s (%s) from %s", user.user_id, user.role, source)
    response = RedirectResponse(next_path or home_for(user.role), status_code=303)
    response.set_cookie(SESSION_COOKIE, issued.token, max_age=settings.session_minutes * 60, path="/",
                        httponly=True, samesite="lax", secure=settings.cookie_secure)
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="lax", secure=settings.cookie_secure)
    return response


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, engine: EngineDep, settings: SettingsDep, _actor: AnyActor) -> Response:
    """Revokes the token this request signed in with (the Policy checked the form's CSRF token first)."""
    found = credentials(request)
    if found is not None:
        with session_scope(engine) as db:
            auth_service.revoke(db, found[1])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, _actor: AnyActor) -> Response:
    return templates.TemplateResponse(request, "account.html", {"active": "account"})
