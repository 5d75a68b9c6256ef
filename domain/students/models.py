from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.crypto import EncryptedString
from core.types import UTCDateTime, utcnow


class Student(SQLModel, table=True):
    __tablename__ = "students"

    student_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(sa_column=Column(EncryptedString(200), nullable=False))  # PII, encrypted at rest
    age: int | None = None
    grade_level: str | None = Field(default=None, max_length=32)
    subjects_interested: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
