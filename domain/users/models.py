from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from core.crypto import EncryptedString, hash_default
from core.types import UTCDateTime, utcnow


class Role(StrEnum):
    ops_manager = "ops_manager"
    people_ops = "people_ops"
    tutor = "tutor"
    student = "student"
    admin = "admin"
    # A machine account: the marketplace's systems posting sessions, feedback and events. Not a person.
    service = "service"


class User(SQLModel, table=True):
    __tablename__ = "users"

    user_id: str = Field(primary_key=True, max_length=64)
    # Encrypted at rest (core.crypto); sign-in finds the row by email_hash, a keyed hash of the normalised email.
    email: str = Field(sa_column=Column(EncryptedString(254), nullable=False))
    email_hash: str | None = Field(default=None, sa_column=Column(
        String(64), unique=True, nullable=False, default=hash_default("email")))
    name: str = Field(sa_column=Column(EncryptedString(200), nullable=False))
    role: str = Field(max_length=16, index=True)
    password_hash: str | None = Field(default=None, max_length=255)  # argon2id; None: no local password (SSO only)
    # A tutor or student account reads only its own records: the link to them.
    tutor_id: str | None = Field(default=None, foreign_key="tutors.tutor_id", max_length=64)
    student_id: str | None = Field(default=None, foreign_key="students.student_id", max_length=64)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
