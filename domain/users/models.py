from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class Role(StrEnum):
    ops_manager = "ops_manager"
    people_ops = "people_ops"
    tutor = "tutor"
    student = "student"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"

    user_id: str = Field(primary_key=True, max_length=64)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    # A tutor or student account reads only its own records: the link to them.
    tutor_id: str | None = Field(default=None, foreign_key="tutors.tutor_id", max_length=64)
    student_id: str | None = Field(default=None, foreign_key="students.student_id", max_length=64)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
