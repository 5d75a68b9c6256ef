"""Session ingestion: validate references, insert-if-absent, all in the caller's transaction."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlmodel import Session

from core.errors import InputError, field_error
from core.types import utcnow
from domain.sessions.models import IngestResult, SessionIn, TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor

# Keeps IN (...) lists under SQLite's and PostgreSQL's parameter limits.
IN_CHUNK = 900


def existing_ids(db: Session, column, ids: Sequence[str]) -> set[str]:  # noqa: ANN001
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), IN_CHUNK):
        found.update(db.execute(select(column).where(column.in_(unique[i:i + IN_CHUNK]))).scalars())
    return found


def check_references(db: Session, items: Sequence[SessionIn | object], *, loc_prefix: list, fields: dict) -> None:
    """Raise InputError naming every item/field that points at an unknown tutor or student.

    ``fields`` maps an attribute name to the id column it must exist in.
    """
    errors = []
    for attr, column in fields.items():
        known = existing_ids(db, column, [getattr(item, attr) for item in items])
        for index, item in enumerate(items):
            value = getattr(item, attr)
            if value not in known:
                errors.append(field_error([*loc_prefix(index), attr], f"unknown {attr} '{value}'", "value_error.unknown_id"))
    if errors:
        raise InputError(errors)


def ingest_sessions(db: Session, items: Sequence[SessionIn], *, many: bool, now: datetime | None = None) -> list[IngestResult]:
    """Store sessions not seen before; a repeated session_id returns the stored row's id, unchanged.

    All-or-nothing: one unknown id anywhere rejects the whole batch before anything is written.
    """
    now = now or utcnow()
    loc = (lambda i: ["body", i]) if many else (lambda _i: ["body"])
    check_references(db, items, loc_prefix=loc, fields={"tutor_id": Tutor.tutor_id, "student_id": Student.student_id})
    existing = existing_ids(db, TutoringSession.session_id, [s.session_id for s in items])
    results: list[IngestResult] = []
    rows: list[dict] = []
    for item in items:
        if item.session_id in existing:
            results.append(IngestResult(id=item.session_id, status="existing"))
            continue
        existing.add(item.session_id)  # a repeat inside one batch is stored once too
        rows.append({**item.model_dump(), "evaluated_at": None, "created_at": now, "updated_at": now})
        results.append(IngestResult(id=item.session_id, status="created"))
    if rows:
        db.execute(insert(TutoringSession), rows)
    return results


def pending_tutors(db: Session, *, older_than: datetime, limit: int = 1000) -> list[str]:
    """Tutors with sessions ingested before ``older_than`` that no evaluation has covered yet."""
    stmt = (
        select(TutoringSession.tutor_id)
        .where(TutoringSession.evaluated_at.is_(None), TutoringSession.created_at < older_than)
        .distinct()
        .limit(limit)
    )
    return list(db.execute(stmt).scalars())
