from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class AuthToken(SQLModel, table=True):
    """A bearer token (API) or a page session (cookie). Only a keyed hash of the token is stored: a leaked table
    signs nobody in. Logout and deactivation revoke; expiry is checked on every request."""

    __tablename__ = "auth_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=16)  # bearer | session
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str | None = Field(default=None, max_length=64)  # client address at sign-in
