from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class AuditLog(SQLModel, table=True):
    """Append-only: the product inserts rows and never updates or deletes them."""

    __tablename__ = "audit_log"

    audit_id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=64)  # user id, or "system:<process>"
    action: str = Field(max_length=16)  # read | write
    resource_type: str = Field(max_length=40)
    resource_id: str | None = Field(default=None, max_length=160)
    source: str | None = Field(default=None, max_length=64)  # client address or process
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
