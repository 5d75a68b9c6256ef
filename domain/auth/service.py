"""Sign-in, tokens and sign-out. Tokens are 256-bit random strings handed to the client once; the table keeps a
keyed hash (core.keys secret), so resolving a token is one primary-key lookup and a stolen table is useless."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session

from core.keys import Keys, derive, process_keys
from core.passwords import hash_password, needs_rehash, verify_password
from core.types import utcnow
from domain.auth.models import AuthToken
from domain.users import service as user_service
from domain.users.models import User

BEARER, SESSION = "bearer", "session"


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: datetime
    user: User


def token_hash(token: str, keys: Keys | None = None) -> str:
    return hmac.new(derive((keys or process_keys()).secret, "token"), token.encode(), hashlib.sha256).hexdigest()


def authenticate(db: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (one answer for every failure)."""
    user = user_service.by_email(db, email)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        return None
    if needs_rehash(user.password_hash):  # argon2 parameters moved on: upgrade the stored hash while we know it
        user.password_hash = hash_password(password)
    return user


def issue(db: Session, user: User, *, kind: str, minutes: int, source: str | None = None,
          now: datetime | None = None) -> Issued:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=minutes)
    db.add(AuthToken(token_hash=token_hash(token), user_id=user.user_id, kind=kind, created_at=now,
                     expires_at=expires, source=(source or "")[:64] or None))
    db.flush()
    return Issued(token=token, expires_at=expires, user=user)


def resolve(db: Session, token: str, *, kind: str, now: datetime | None = None) -> tuple[User, AuthToken] | None:
    """The active user behind a live token of this kind, or None (unknown, expired, revoked, or user inactive)."""
    if not token or len(token) > 200:
        return None
    row = db.get(AuthToken, token_hash(token))
    now = now or utcnow()
    if row is None or row.kind != kind or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = user_service.active_user(db, row.user_id)
    return (user, row) if user is not None else None


def revoke(db: Session, token: str, *, now: datetime | None = None) -> bool:
    result = db.execute(update(AuthToken).where(AuthToken.token_hash == token_hash(token), AuthToken.revoked_at.is_(None))
                        .values(revoked_at=now or utcnow()))
    return result.rowcount > 0


def revoke_all(db: Session, user_id: str, *, now: datetime | None = None) -> int:
    """Every live token of a user: on deactivation and role change, so a new role is never served an old session."""
    result = db.execute(update(AuthToken).where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
                        .values(revoked_at=now or utcnow()))
    return result.rowcount


def csrf_token(session_token_hash: str, keys: Keys | None = None) -> str:
    """The form token of a page session: bound to the session, so a token from another session is refused."""
    return hmac.new(derive((keys or process_keys()).secret, "csrf"), session_token_hash.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session_token_hash: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(session_token_hash), presented or "")
