"""Writing the simulation's own rows: hired tutors, students and the ground truth, idempotently.

Sessions, feedback and events go through the product's ingestion services; these rows have no such service
(tutors are onboarded outside the product; the truth tables are the simulation's alone).
"""
from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlmodel import Session

from domain.sessions.service import IN_CHUNK, existing_ids
from synth.truth import TruthTransition, TruthTutor

CHUNK = 5000


def insert_missing(db: Session, table: type, key: str, rows: list[dict]) -> int:
    """Insert the rows whose ``key`` is not stored yet; returns how many were new."""
    if not rows:
        return 0
    found = existing_ids(db, getattr(table, key), [r[key] for r in rows])
    fresh = [r for r in rows if r[key] not in found]
    for i in range(0, len(fresh), CHUNK):
        db.execute(insert(table), fresh[i:i + CHUNK])
    return len(fresh)


def upsert_truth(db: Session, tutors: list[dict], transitions: list[dict]) -> int:
    """Store truth rows; a tutor's churn is filled in once it has happened. Returns rows written."""
    written = insert_missing(db, TruthTransition, "transition_id", transitions)
    if not tutors:
        return written
    stored = {}
    ids = [r["tutor_id"] for r in tutors]
    for i in range(0, len(ids), IN_CHUNK):
        stmt = select(TruthTutor.tutor_id, TruthTutor.churned_at, TruthTutor.churn_cause).where(
            TruthTutor.tutor_id.in_(ids[i:i + IN_CHUNK]))
        stored.update({t: (c, cause) for t, c, cause in db.execute(stmt)})
    fresh = [r for r in tutors if r["tutor_id"] not in stored]
    for i in range(0, len(fresh), CHUNK):
        db.execute(insert(TruthTutor), fresh[i:i + CHUNK])
    changed = [r for r in tutors if r["tutor_id"] in stored and stored[r["tutor_id"]] != (r["churned_at"], r["churn_cause"])]
    for r in changed:
        db.execute(update(TruthTutor).where(TruthTutor.tutor_id == r["tutor_id"]).values(
            churned_at=r["churned_at"], churn_cause=r["churn_cause"], updated_at=r["updated_at"]))
    return written + len(fresh) + len(changed)
