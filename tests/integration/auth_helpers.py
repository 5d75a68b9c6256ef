"""The app, a client and a small world for the self-service and tutor-privacy tests.

The world is what the product itself writes about a tutor who is doing badly: a tier history ending "At Risk"
with a "churn risk Critical" reason, metrics rows carrying that tier, a churn prediction with model factors, an
intervention message; and students with distinctive names and ids, so a payload search for them means something.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import fastapi.routing
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.feedback.models import StudentFeedback
from domain.interventions.models import OutboxMessage
from domain.metrics.models import TutorPerformanceMetric
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tiers.models import TierHistory
from domain.tutors.models import Tutor
from tests.auth import account, bearer
from tests.factories import intervention_row

__all__ = ["World", "account", "api_client", "bearer", "build_app", "routes", "seed_world"]

WEEK_45 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # Monday of ISO week 2026-W45
WEEK_46 = datetime(2026, 11, 9, 14, 0, tzinfo=UTC)  # 2026-W46


def routes(app: FastAPI) -> list:
    # FastAPI 0.16x keeps included routers unflattened in app.routes; iter_route_contexts yields full paths.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(app.routes) if flatten else app.routes)


def build_app(settings: Settings) -> FastAPI:
    """The real app, with Temporal unreachable (the tests read; a submitted feedback's signal just waits)."""
    return create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))


def api_client(app: FastAPI, host: str = "10.1.2.3") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)),
                             base_url="https://testserver")


@dataclass
class World:
    tutor_a: str = "tutor_priv_a"
    tutor_b: str = "tutor_priv_b"
    # id -> name; names and ids nobody would write by accident, so finding one in a payload is a leak.
    students: dict[str, str] = field(default_factory=lambda: {
        "stu_xq71": "Xanthe Mulberry", "stu_xq72": "Quentin Oakhart", "stu_xq73": "Yolanda Peabody",
        "stu_xq74": "Wendell Fairweather"})
    sessions: dict[str, TutoringSession] = field(default_factory=dict)
    message_id: str = "msg_priv_a"

    @property
    def student_ids(self) -> list[str]:
        return list(self.students)

    def forbidden(self) -> list[str]:
        """Strings no tutor payload may contain (lower case): student ids, names and name parts, risk words."""
        words = ["churn", "risk"]
        for sid, name in self.students.items():
            words += [sid, name, *name.split()]
        return [w.lower() for w in words]


def _session(sid: str, tutor: str, student: str, start: datetime, *, number: int = 2, subject: str = "Mathematics",
             rating: float | None = 4.0) -> TutoringSession:
    return TutoringSession(session_id=sid, tutor_id=tutor, student_id=student, session_number=number,
                           scheduled_start=start, actual_start=start + timedelta(minutes=1), duration_minutes=60,
                           subject=subject, student_rating=rating, late_start_minutes=1,
                           student_feedback_text=f"quick note from {student}")


def _feedback(s: TutoringSession, rating: int, text: str, *, after: timedelta = timedelta(hours=2)) -> StudentFeedback:
    return StudentFeedback(feedback_id=f"fb_{s.session_id}", session_id=s.session_id, student_id=s.student_id,
                           tutor_id=s.tutor_id, overall_rating=rating, is_first_session=s.session_number == 1,
                           subject_knowledge_rating=rating, communication_rating=4, patience_rating=None,
                           would_recommend=True, improvement_areas=["Technical issues"] if rating < 3 else [],
                           free_text_feedback=text, submitted_at=s.scheduled_start + after)


def seed_world(engine: Engine) -> World:
    w = World()
    st = w.student_ids
    plan = [
        # tutor A, week 45: three feedbacks but only two distinct students -> suppressed
        ("a45_1", w.tutor_a, st[0], WEEK_45, 1, 5, "W45 first SUPPRESSED-MARKER"),
        ("a45_2", w.tutor_a, st[1], WEEK_45 + timedelta(days=1), 2, 2, "W45 second SUPPRESSED-MARKER"),
        ("a45_3", w.tutor_a, st[0], WEEK_45 + timedelta(days=2), 3, 4, "W45 third SUPPRESSED-MARKER"),
        # tutor A, week 46: three students -> shown (one signs with her own name, which must be redacted)
        ("a46_1", w.tutor_a, st[0], WEEK_46, 4, 5, "Great algebra help"),
        ("a46_2", w.tutor_a, st[1], WEEK_46 + timedelta(days=1), 3, 3, "A bit fast for me"),
        ("a46_3", w.tutor_a, st[2], WEEK_46 + timedelta(days=2), 1, 4, "Thanks! Yolanda Peabody"),
        # tutor B, week 46: someone else's feedback tutor A must never see
        ("b46_1", w.tutor_b, st[3], WEEK_46, 1, 4, "TUTOR-B-MARKER"),
        ("b46_2", w.tutor_b, st[0], WEEK_46 + timedelta(hours=3), 5, 3, "TUTOR-B-MARKER again"),
        ("b46_3", w.tutor_b, st[1], WEEK_46 + timedelta(hours=5), 2, 5, "TUTOR-B-MARKER third"),
    ]
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id=w.tutor_a, name="Emily Tran", email="emily@example.test",
                     onboarding_date=date(2026, 1, 5), subjects=["Mathematics"]))
        db.add(Tutor(tutor_id=w.tutor_b, name="Bob Lindqvist", email="bob@example.test",
                     onboarding_date=date(2025, 6, 1), subjects=["Chemistry"]))
        for sid, name in w.students.items():
            db.add(Student(student_id=sid, name=name, age=15, grade_level="10", subjects_interested=["Mathematics"]))
        db.flush()
        for sid, tutor, student, start, number, rating, text in plan:
            s = _session(sid, tutor, student, start, number=number,
                         subject="Chemistry" if tutor == w.tutor_b else "Mathematics")
            db.add(s)
            w.sessions[sid] = s
            db.flush()
            db.add(_feedback(s, rating, text))
        # Sessions without feedback: one past (for the link flow), one first session, one in the future.
        for sid, start, number in (("a47_open", WEEK_46 + timedelta(days=7), 5),
                                   ("a47_first", WEEK_46 + timedelta(days=7, hours=2), 1),
                                   ("a_future", datetime.now(UTC) + timedelta(days=3), 6)):
            s = _session(sid, w.tutor_a, st[3], start, number=number, rating=None)
            db.add(s)
            w.sessions[sid] = s
        _tutor_a_risk_record(db, w)
    return w


def _tutor_a_risk_record(db, w: World) -> None:  # noqa: ANN001
    """What the evaluations write about a tutor at critical churn risk."""
    t = w.tutor_a
    db.add(TierHistory(tutor_id=t, assigned_at=datetime(2026, 11, 1, tzinfo=UTC), tier="Strong",
                       source="monthly_review", performance_index=0.71,
                       reasons=["performance index 0.71 is in the Strong band"], rules_version="scoring@v1"))
    db.add(TierHistory(tutor_id=t, assigned_at=datetime(2026, 11, 10, tzinfo=UTC), tier="At Risk",
                       previous_tier="Strong", source="evaluation", performance_index=0.7,
                       reasons=["performance index 0.70 is in the Strong band", "churn risk Critical"],
                       rules_version="scoring@v1"))
    db.add(TierHistory(tutor_id=t, assigned_at=datetime(2026, 11, 12, tzinfo=UTC), tier="Needs Attention",
                       previous_tier="At Risk", source="evaluation", performance_index=0.7,
                       reasons=["churn risk High"], rules_version="scoring@v1"))
    for window, as_of, avg in (("7day", datetime(2026, 11, 9, tzinfo=UTC), 3.7),
                               ("30day", datetime(2026, 11, 16, tzinfo=UTC), 4.85)):
        db.add(TutorPerformanceMetric(tutor_id=t, calculation_date=as_of.date(), window=window, as_of=as_of,
                                      sessions_scheduled=6, sessions_completed=6, avg_rating=avg,
                                      reschedule_rate=0.0, no_show_count=0, performance_tier="At Risk",
                                      performance_index=0.7, rules_version="scoring@v1"))
    db.add(ChurnPrediction(tutor_id=t, prediction_date=date(2026, 11, 16), as_of=datetime(2026, 11, 16, tzinfo=UTC),
                           churn_score=88.0, risk_level="Critical", contributing_factors={"engagement": 30},
                           flags=[{"name": "poor_first_session"}], model_churn_score=80.0, model_risk_level="Critical",
                           model_factors=[{"feature": "days_since_last_session", "contribution": 0.4}],
                           model_version="rules@v1"))
    db.add(intervention_row("iv_priv_a", t, "A1", recommended=datetime(2026, 11, 16, tzinfo=UTC),
                            kind="automated", risk_level="Critical", churn_score=88.0,
                            reason="churn score 88 (Critical)"))
    db.flush()
    db.add(OutboxMessage(message_id=w.message_id, intervention_id="iv_priv_a", tutor_id=t, channel="in_app",
                         subject="Resources for your next sessions", body="A few ideas that help tutors grow.",
                         payload={"churn_score": 88.0}))
