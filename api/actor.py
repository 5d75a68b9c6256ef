"""Who is calling: the signed-in account behind a bearer token (API) or a session cookie (pages).

Authentication only; what a caller may do is api.policy's business.
"""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from domain.auth import service as auth_service
from domain.users.models import User

SESSION_COOKIE = "tp_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True)
class Actor:
    user_id: str
    role: str
    name: str = ""
    tutor_id: str | None = None
    student_id: str | None = None
    via: str = auth_service.BEARER  # bearer | session
    session_hash: str | None = None  # the page session's token hash: binds its CSRF token
    source: str | None = None  # client address

    @property
    def csrf_token(self) -> str | None:
        return auth_service.csrf_token(self.session_hash) if self.session_hash else None


class SignInRequired(Exception):
    """No credentials, or credentials that are unknown, expired or revoked (401; pages redirect to /login)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def credentials(request: Request) -> tuple[str, str] | None:
    """(kind, token) from the Authorization header, else the session cookie; None when neither is present."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SignInRequired("Authorization must be 'Bearer <token>' (get one from POST /api/v1/auth/token).")
        return auth_service.BEARER, token.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    return (auth_service.SESSION, cookie) if cookie else None


def actor_for(user: User, *, via: str, session_hash: str | None, source: str | None) -> Actor:
    return Actor(user_id=user.user_id, role=user.role, name=user.name, tutor_id=user.tutor_id,
                 student_id=user.student_id, via=via, session_hash=session_hash, source=source)


def authenticate(db: Session, request: Request) -> Actor | None:
    """The caller's Actor, None when the request carries no credentials; SignInRequired when they are bad."""
    found = credentials(request)
    if found is None:
        return None
    kind, token = found
    resolved = auth_service.resolve(db, token, kind=kind)
    if resolved is None:
        raise SignInRequired("Your sign-in is unknown, expired or revoked: sign in again.")
    user, row = resolved
    return actor_for(user, via=kind, session_hash=row.token_hash if kind == auth_service.SESSION else None,
                     source=client_address(request))
