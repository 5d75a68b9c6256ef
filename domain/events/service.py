"""Tutor behaviour events (logins, reschedule requests, ...): insert-if-absent on event_id."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from core.types import utcnow
from domain.events.models import TutorEvent
from domain.events.schemas import TutorEventIn
from domain.sessions.models import IngestResult
from domain.sessions.service import existing_ids, check_references
from domain.tutors.models import Tutor


def ingest_events(db: Session, items: Sequence[TutorEventIn], *, many: bool, now: datetime | None = None) -> list[IngestResult]:
    now = now or utcnow()
    loc = (lambda i: ["body", i]) if many else (lambda _i: ["body"])
    check_references(db, items, loc_prefix=loc, fields={"tutor_id": Tutor.tutor_id})
    existing = existing_ids(db, TutorEvent.event_id, [e.event_id for e in items])
    results, rows = [], []
    for item in items:
        if item.event_id in existing:
            results.append(IngestResult(id=item.event_id, status="existing"))
            continue
        existing.add(item.event_id)
        rows.append({
            "event_id": item.event_id, "tutor_id": item.tutor_id, "event_type": item.event_type,
            "event_timestamp": item.event_timestamp, "metadata": item.metadata, "created_at": now,
        })
        results.append(IngestResult(id=item.event_id, status="created"))
    if rows:
        # Core insert by column name: the ORM attribute is event_metadata, the column is "metadata".
        db.execute(insert(TutorEvent.__table__), rows)
    return results
