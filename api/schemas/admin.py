"""Request and response bodies of the admin API: accounts (/api/v1/users) and the audit log (/api/v1/audit).

No response model has a password or password hash field; the password a request carries is a SecretStr, so
it prints as ********** in any repr, traceback or log line.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from domain.users.models import Role

# PostgreSQL refuses NUL in text parameters (a 500, not a 422): ids and filters compared in SQL carry no control
# characters. Names and emails are stored encrypted, so only their own rules apply to them.
PLAIN = r"^[^\x00-\x1f\x7f]*$"
ID = Field(default=None, min_length=1, max_length=64, pattern=PLAIN)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: str
    email: str
    name: str
    role: Role
    tutor_id: str | None = Field(description="the tutor record a tutor account reads (its own only)")
    student_id: str | None = Field(description="the student record a student account reads (its own only)")
    is_active: bool
    has_password: bool = Field(description="False: no local password (single sign-on only, or not set yet)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: Any) -> UserRead:  # noqa: ANN401 - a domain.users.models.User
        return cls.model_validate({**{k: getattr(user, k) for k in (
            "user_id", "email", "name", "role", "tutor_id", "student_id", "is_active", "created_at", "updated_at")},
            "has_password": user.password_hash is not None})


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254, pattern=PLAIN)
    name: str = Field(min_length=1, max_length=200, pattern=PLAIN)
    role: Role
    password: SecretStr | None = Field(default=None, max_length=1024, description=(
        "at least 12 characters; omit for an account that signs in only through single sign-on. Never echoed."))
    tutor_id: str | None = ID
    student_id: str | None = ID


class RoleChange(BaseModel):
    """A new role; the links must fit it (a tutor account names its tutor record, a student account its student).
    The account's sessions and tokens end: it signs in again under the new role."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    tutor_id: str | None = ID
    student_id: str | None = ID


class ActiveChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool = Field(description="False deactivates: sign-in is refused and every live token stops working")


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    audit_id: int
    at: datetime
    actor: str = Field(description="user id, or system:<process>")
    action: str = Field(description="read | write")
    resource_type: str
    resource_id: str | None
    source: str | None = Field(description="client address or process")
    details: dict[str, Any]


class AuditSearchRead(BaseModel):
    total: int = Field(description="rows matching the filters, across all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; None on the last one")
    items: list[AuditEntry] = Field(description="newest first")
