"""Small hand-made records for tests that need exact control (the synthetic engine builds the big worlds)."""
from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from core.db import get_engine, session_scope
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.interventions.models import Intervention
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def seed_people(engine: Engine, *, tutors: int = 2, students: int = 3, onboarded: date = date(2026, 1, 5),
                tag: str = "") -> list[str]:
    """Tutors tutor_1.. (or tutor_<tag>_1.. where tests share one Temporal server) and students student_1..."""
    ids = [f"tutor_{tag}_{i}" if tag else f"tutor_{i}" for i in range(1, tutors + 1)]
    with session_scope(engine) as db:
        for i, tutor_id in enumerate(ids, start=1):
            db.add(Tutor(tutor_id=tutor_id, name=f"Tutor {i}", email=f"t{i}@example.test", onboarding_date=onboarded,
                         subjects=["Mathematics"], baseline_sessions_per_week=15))
        for i in range(1, students + 1):
            db.add(Student(student_id=f"student_{i}", name=f"Student {i}", age=15, grade_level="10",
                           subjects_interested=["Mathematics"]))
    return ids


def session_payload(n: int = 1, *, tutor: str = "tutor_1", student: str = "student_1", at: datetime = NOW,
                    **overrides: Any) -> dict[str, Any]:
    start = at - timedelta(hours=n)
    body = {
        "session_id": f"sess_{tutor}_{n}", "tutor_id": tutor, "student_id": student, "session_number": n,
        "scheduled_start": start.isoformat(), "actual_start": (start + timedelta(minutes=2)).isoformat(),
        "duration_minutes": 60, "subject": "Mathematics", "session_type": "1-on-1",
        "tutor_initiated_reschedule": False, "no_show": False, "late_start_minutes": 2,
        "engagement_score": 0.8, "student_rating": 4.5, "learning_objectives_met": True, "technical_issues": False,
    }
    body.update(overrides)
    return body


def feedback_payload(session: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "feedback_id": f"fb_{session['session_id']}", "session_id": session["session_id"],
        "student_id": session["student_id"], "tutor_id": session["tutor_id"], "overall_rating": 4,
        "first_session": session["session_number"] == 1,
        "ratings": {"subject_knowledge": 5, "communication": 4, "patience": 5, "engagement": 3, "helpfulness": 4},
        "would_recommend": True, "free_text_feedback": "Clear explanations.",
        "timestamp": (datetime.fromisoformat(session["scheduled_start"]) + timedelta(minutes=70)).isoformat(),
    }
    body.update(overrides)
    return body


def intervention_row(iid: str, tutor: str, itype: str, *, recommended: datetime, kind: str = "human",
                     **extra: Any) -> Intervention:
    """An intervention row as its workflow would have written it, for tests of what reads them."""
    return Intervention(intervention_id=iid, tutor_id=tutor, intervention_type=itype, kind=kind,
                        trigger_reason=extra.pop("reason", f"reason of {iid}"), recommended_date=recommended,
                        rules_version="tutor_interventions@v2", rules_hash="h", matched_rules=["test"], **extra)


def truncated_copy(engine: Engine, folder: Path, cut: date | datetime) -> Engine:
    """A copy of a SQLite database with everything at or after ``cut`` deleted (a date means its 00:00 UTC):
    sessions, their feedback, feedback submitted later, events. Point-in-time tests compare features computed
    on it with the same features computed on the full history."""
    at_cut = cut if isinstance(cut, datetime) else datetime(cut.year, cut.month, cut.day, tzinfo=UTC)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    dst = folder / f"cut-{at_cut:%Y%m%dT%H%M%S}.db"
    shutil.copy(engine.url.database, dst)
    copy = get_engine(f"sqlite:///{dst}")
    with session_scope(copy) as db:
        later = select(TutoringSession.session_id).where(TutoringSession.scheduled_start >= at_cut)
        db.execute(delete(StudentFeedback).where(StudentFeedback.submitted_at >= at_cut))
        db.execute(delete(StudentFeedback).where(StudentFeedback.session_id.in_(later)))
        db.execute(delete(TutoringSession).where(TutoringSession.scheduled_start >= at_cut))
        db.execute(delete(TutorEvent).where(TutorEvent.event_timestamp >= at_cut))
    return copy
