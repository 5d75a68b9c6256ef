"""Writing audit rows. The product only ever inserts them (the database refuses updates, see migration 0009)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.types import utcnow
from domain.audit.models import AuditLog


def record(db: Session, *, actor: str, action: str, resource_type: str, resource_id: str | None = None,
           source: str | None = None, details: dict[str, Any] | None = None, at: datetime | None = None) -> AuditLog:
    row = AuditLog(at=at or utcnow(), actor=actor[:64], action=action, resource_type=resource_type[:40],
                   resource_id=(resource_id or None) and resource_id[:160], source=(source or None) and source[:64],
                   details=details or {})
    db.add(row)
    db.flush()
    return row
