"""Signing test callers in: accounts per role and real bearer tokens (the same issue path as /api/v1/auth/token)."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from core.db import session_scope
from domain.auth import service as auth_service
from domain.users import service as user_service
from domain.users.models import User

PASSWORD = "correct horse battery staple"


def account(engine: Engine, role: str, *, user_id: str | None = None, tutor_id: str | None = None,
            student_id: str | None = None, name: str | None = None) -> str:
    """The id of an active account with this role (created on first use; the same id returns the same row)."""
    user_id = user_id or f"u_test_{role}"
    with session_scope(engine) as db:
        if db.get(User, user_id) is None:
            user_service.create_user(db, user_id=user_id, email=f"{user_id}@example.test", name=name or user_id,
                                     role=role, password=PASSWORD, tutor_id=tutor_id, student_id=student_id)
    return user_id


def bearer(engine: Engine, user_id: str) -> dict[str, str]:
    """Authorization headers for an existing user (e.g. the demo staff), with a fresh one-hour token."""
    with session_scope(engine) as db:
        user = db.get(User, user_id)
        assert user is not None, f"no user {user_id}: create it first (tests.auth.account)"
        issued = auth_service.issue(db, user, kind=auth_service.BEARER, minutes=60)
    return {"Authorization": f"Bearer {issued.token}"}


def as_role(engine: Engine, role: str, **links: str) -> dict[str, str]:
    return bearer(engine, account(engine, role, **links))


def page_session(engine: Engine, user_id: str, *, minutes: int = 60) -> tuple[str, str]:
    """(tp_session cookie value, the session's CSRF form token) for a signed-in browser, issued through
    domain.auth like POST /login does (tests/integration/test_login.py covers the form itself)."""
    with session_scope(engine) as db:
        user = db.get(User, user_id)
        assert user is not None, f"no user {user_id}"
        issued = auth_service.issue(db, user, kind=auth_service.SESSION, minutes=minutes)
    return issued.token, auth_service.csrf_token(auth_service.token_hash(issued.token))


def sign_in(client, engine: Engine, user_id: str, *, minutes: int = 60) -> str:  # noqa: ANN001 - any httpx client
    """Gives ``client`` a live session cookie for ``user_id``; returns the session's CSRF token for form posts."""
    from api.actor import SESSION_COOKIE

    cookie, csrf = page_session(engine, user_id, minutes=minutes)
    client.cookies.set(SESSION_COOKIE, cookie)
    return csrf
