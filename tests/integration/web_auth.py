"""Signing test clients in to the pages: a real account and a real page session, as POST /login would leave."""
from __future__ import annotations

import re

from sqlalchemy.engine import Engine

from core.db import session_scope
from domain.users import service as user_service
from domain.users.models import User
from tests.auth import PASSWORD
from tests.auth import sign_in as auth_sign_in

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def make_user(engine: Engine, role: str, *, user_id: str | None = None, name: str | None = None,
              password: str = PASSWORD, **links: str) -> User:
    user_id = user_id or f"u_{role}"
    with session_scope(engine) as db:
        return user_service.create_user(db, email=f"{user_id}@tutorpulse.example", name=name or user_id.title(),
                                        role=role, password=password, user_id=user_id, **links)


def sign_in(client, engine: Engine, user: User, *, minutes: int = 60) -> str:  # noqa: ANN001 - any httpx client
    """tests.auth.sign_in for a User row."""
    return auth_sign_in(client, engine, user.user_id, minutes=minutes)


def csrf_tokens(html: str) -> list[str]:
    """The csrf_token value of every form on a page."""
    return _CSRF.findall(html)
