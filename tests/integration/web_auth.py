"""Signing test clients in to the pages: a real account and a real page session, as POST /login would leave."""
from __future__ import annotations

import re

from sqlalchemy.engine import Engine

from api.actor import SESSION_COOKIE
from core.db import session_scope
from domain.auth import service as auth_service
from domain.users import service as user_service
from domain.users.models import User

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def make_user(engine: Engine, role: str, *, user_id: str | None = None, name: str | None = None,
              password: str = PASSWORD, **links: str) -> User:
    user_id = user_id or f"u_{role}"
    with session_scope(engine) as db:
        return user_service.create_user(db, email=f"{user_id}@tutorpulse.example", name=name or user_id.title(),
                                        role=role, password=password, user_id=user_id, **links)


def sign_in(client, engine: Engine, user: User, *, minutes: int = 60) -> str:  # noqa: ANN001 - any httpx client
    """Gives ``client`` a live session cookie for ``user``; returns the session's CSRF token for form posts.

    The token is issued through domain.auth like POST /login does; tests/integration/test_login.py covers the
    form itself (its CSRF nonce, rate limit and cookie flags).
    """
    with session_scope(engine) as db:
        issued = auth_service.issue(db, user, kind=auth_service.SESSION, minutes=minutes)
    client.cookies.set(SESSION_COOKIE, issued.token)
    return auth_service.csrf_token(auth_service.token_hash(issued.token))


def csrf_tokens(html: str) -> list[str]:
    """The csrf_token value of every form on a page."""
    return _CSRF.findall(html)
