"""Feedback ingestion: one feedback per session, matching that session's tutor and student."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlmodel import Session

from core.errors import InputError, field_error
from core.types import utcnow
from domain.feedback.models import FeedbackIn, StudentFeedback
from domain.sessions.models import IngestResult, TutoringSession
from domain.sessions.service import IN_CHUNK, existing_ids


def _sessions_by_id(db: Session, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), IN_CHUNK):
        stmt = select(TutoringSession.session_id, TutoringSession.tutor_id, TutoringSession.student_id).where(
            TutoringSession.session_id.in_(unique[i:i + IN_CHUNK])
        )
        found.update({sid: (tid, stid) for sid, tid, stid in db.execute(stmt)})
    return found


def ingest_feedback(db: Session, items: Sequence[FeedbackIn], *, many: bool, now: datetime | None = None) -> list[IngestResult]:
    now = now or utcnow()
    loc = (lambda i: ["body", i]) if many else (lambda _i: ["body"])
    existing = existing_ids(db, StudentFeedback.feedback_id, [f.feedback_id for f in items])
    sessions = _sessions_by_id(db, [f.session_id for f in items])
    errors = []
    for index, item in enumerate(items):
        if item.feedback_id in existing:
            continue  # a replay is a no-op, whatever it carries
        ref = sessions.get(item.session_id)
        if ref is None:
            errors.append(field_error([*loc(index), "session_id"], f"unknown session_id '{item.session_id}'", "value_error.unknown_id"))
            continue
        if item.tutor_id != ref[0]:
            errors.append(field_error([*loc(index), "tutor_id"], f"tutor_id does not match session '{item.session_id}'"))
        if item.student_id != ref[1]:
            errors.append(field_error([*loc(index), "student_id"], f"student_id does not match session '{item.session_id}'"))
    if errors:
        raise InputError(errors)
    # A session takes one feedback: a second feedback_id for the same session is a conflict, not a repeat.
    taken = existing_ids(db, StudentFeedback.session_id, [f.session_id for f in items])
    results, rows = [], []
    for index, item in enumerate(items):
        if item.feedback_id in existing:
            results.append(IngestResult(id=item.feedback_id, status="existing"))
            continue
        if item.session_id in taken:
            raise InputError([field_error([*loc(index), "session_id"], f"session '{item.session_id}' already has feedback", "value_error.duplicate")])
        existing.add(item.feedback_id)
        taken.add(item.session_id)
        r = item.ratings
        rows.append({
            "feedback_id": item.feedback_id, "session_id": item.session_id, "student_id": item.student_id,
            "tutor_id": item.tutor_id, "overall_rating": item.overall_rating, "is_first_session": item.first_session,
            "subject_knowledge_rating": r.subject_knowledge, "communication_rating": r.communication,
            "patience_rating": r.patience, "engagement_rating": r.engagement, "helpfulness_rating": r.helpfulness,
            "would_recommend": item.would_recommend, "improvement_areas": item.improvement_areas,
            "free_text_feedback": item.free_text_feedback, "submitted_at": item.timestamp, "created_at": now,
        })
        results.append(IngestResult(id=item.feedback_id, status="created"))
    if rows:
        db.execute(insert(StudentFeedback), rows)
        # The session counts as unevaluated again: the tutor's workflow is signalled to re-evaluate, and should that
        # signal be lost (Temporal down), the sweep finds the session pending and signals it again.
        rated = [r["session_id"] for r in rows]
        for i in range(0, len(rated), IN_CHUNK):
            db.execute(update(TutoringSession).where(TutoringSession.session_id.in_(rated[i:i + IN_CHUNK]))
                       .values(evaluated_at=None))
    return results
