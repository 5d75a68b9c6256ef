"""The tutor profile page (/tutors/{id}) on SQLite and PostgreSQL: what it shows of a seeded tutor, its audit rows,
the notes form, who may open it, and the create-intervention form: refused input and Temporal down without a
worker, then a real start on the dev server where a double submit still makes one case.
"""
from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.audit.models import AuditLog
from domain.feedback.models import StudentFeedback
from domain.interventions.models import Intervention, InterventionEvent, OutboxMessage
from domain.metrics.models import TutorPerformanceMetric
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.tutors.notes import TutorNote
from tests.factories import intervention_row
from tests.integration.web_auth import make_user, sign_in
from workflows.inputs import TaskView

D = timedelta(days=1)
STUDENT_NAME = "Alexandra Quill"


def seed_profile_tutor(engine: Engine, tutor_id: str) -> None:
    """A Critical tutor with everything the page shows: prediction (rules and model), metrics, weekly rows, an
    intervention with an event, feedback on a session and a message."""
    now = utcnow().replace(microsecond=0)
    today = now.date()
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id=tutor_id, name="Jane Doe", email=f"{tutor_id}@example.test",
                     onboarding_date=today - 124 * D, subjects=["Mathematics", "Physics"], baseline_sessions_per_week=7))
        db.add(Student(student_id=f"pupil_{tutor_id}", name=STUDENT_NAME, age=16, grade_level="11",
                       subjects_interested=["Mathematics"]))
        db.flush()
        db.add(ChurnPrediction(
            tutor_id=tutor_id, prediction_date=today, as_of=now, churn_score=82.0, risk_level="Critical",
            model_version="rules", rules_version="scoring@v1", facts={"churn_score": 82.0, "risk_level": "Critical"},
            contributing_factors={
                "reschedule_pattern": {"score": 90.0, "weight": 0.2, "contribution": 18.0},
                "engagement_decline": {"score": 70.0, "weight": 0.25, "contribution": 17.5}},
            flags=[{"name": "high_reschedule", "summary": "rescheduled 5 of 18 sessions",
                    "triggered_at": (now - 7 * D).isoformat(), "bump": 10}],
            window_1day_probability=0.75, window_7day_probability=0.88, window_30day_probability=0.82,
            window_90day_probability=0.70, model_churn_score=79.0, model_risk_level="High",
            ml_model_version="churn-2026-12-01", model_factors=[
                {"feature": "days_since_last_session", "value": 9, "contribution": 0.4,
                 "text": "Days since the last session (9) raises the risk"}]))
        db.add(TutorPerformanceMetric(
            tutor_id=tutor_id, calculation_date=today, window="30day", as_of=now, sessions_scheduled=22,
            sessions_completed=18, avg_rating=3.2, first_session_count=4, first_session_success_rate=0.5,
            reschedule_rate=5 / 22, no_show_count=1, no_show_rate=1 / 22, engagement_score=0.42,
            learning_objectives_met_pct=0.9, performance_tier="Needs Attention", performance_index=0.2))
        for week, (done, rating) in enumerate(((5, 4.1), (4, 3.6), (3, 3.1))):
            db.add(TutorPerformanceMetric(
                tutor_id=tutor_id, calculation_date=today - week * 7 * D, window="7day", as_of=now - week * 7 * D,
                sessions_scheduled=done + 1, sessions_completed=done, avg_rating=rating, reschedule_rate=1 / (done + 1)))
        session = TutoringSession(session_id=f"sess_{tutor_id}", tutor_id=tutor_id, student_id=f"pupil_{tutor_id}",
                                  session_number=1, scheduled_start=now - 2 * D, duration_minutes=60,
                                  subject="Physics")
        db.add(session)
        db.add(intervention_row(f"iv-{tutor_id}", tutor_id, "A1_coaching_tips", kind="automated", step="message",
                                recommended=now - 5 * D, title="Automated coaching tips", status="in_progress",
                                opened_at=now - 4 * D))
        db.flush()
        db.add(InterventionEvent(intervention_id=f"iv-{tutor_id}", revision=0, event="recorded", at=now - 5 * D))
        db.add(StudentFeedback(feedback_id=f"fb_{tutor_id}", session_id=session.session_id,
                               student_id=f"pupil_{tutor_id}", tutor_id=tutor_id, overall_rating=3, is_first_session=True,
                               patience_rating=5, communication_rating=2, free_text_feedback="Tutor seemed tired",
                               submitted_at=now - 2 * D + timedelta(hours=2)))
        db.add(OutboxMessage(message_id=f"iv-{tutor_id}:message:in_app", intervention_id=f"iv-{tutor_id}",
                             tutor_id=tutor_id, channel="in_app", subject="Tips to lift your sessions",
                             body="A few practical tips.", status="sent", sent_at=now - 5 * D, created_at=now - 5 * D))
        # A feedback reminder to the student (no case): not part of the tutor's communication log.
        db.add(OutboxMessage(message_id=f"reminder-{tutor_id}", intervention_id=None, tutor_id=tutor_id,
                             channel="email", subject=f"{STUDENT_NAME}, how was your session?", body="Rate it.",
                             payload={"kind": "feedback_reminder"}, status="queued", created_at=now - D))


def _count(engine: Engine, model: Any, *where: Any) -> int:  # noqa: ANN401
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_profile_page_shows_the_tutor_and_takes_notes(engine: Engine, settings: Settings) -> None:
    seed_profile_tutor(engine, "t_jane")
    manager = make_user(engine, "ops_manager", name="Sarah Chen")
    tutor_user = make_user(engine, "tutor", tutor_id="t_jane")
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))  # Temporal down
    with TestClient(app) as client:
        csrf = sign_in(client, engine, manager)
        page = client.get("/tutors/t_jane")
        assert page.status_code == 200, page.text
        text = _text(page.text)
        assert "Jane Doe (#t_jane)" in text and "124 days" in text and "Mathematics, Physics" in text
        assert "Needs Attention" in text
        assert re.search(r"Churn risk score \(rules\) 82 Critical", text)
        assert re.search(r"Churn risk score \(model\) 79 High", text)
        assert all(h in text for h in ("1-day 75%", "7-day 88%", "30-day 82%", "90-day 70%"))
        assert "Reschedule pattern contributed 18 of 82" in text
        assert "Days since the last session (9) raises the risk" in text
        assert re.search(r"High Reschedule ?: rescheduled 5 of 18 sessions \(triggered 7 days ago", text)
        rating_row = re.search(r'id="metric-avg_rating".*?</tr>', page.text, re.S).group(0)
        assert "3.2 / 5" in rating_row and "below threshold" in rating_row and "at least 3.5" in rating_row
        objectives_row = re.search(r'id="metric-learning_objectives_met_pct".*?</tr>', page.text, re.S).group(0)
        assert "within threshold" in objectives_row
        assert "5 of 22 sessions" in text and "vs. a baseline of 30" in text
        assert page.text.count("data-chart-config=") == 3 and "/static/vendor/chart.umd.min.js" in page.text
        assert "Automated coaching tips" in text and "opened: yes · responded: no" in text
        assert "Tutor seemed tired" in text and "Patience 5/5" in text and "3/5" in text
        assert STUDENT_NAME not in page.text and "pupil_" not in page.text
        assert "Tips to lift your sessions" in text and "Communication log 1 message" in text
        # Two audit rows for the read: the risk data and the student feedback, each naming the reader and tutor.
        with session_scope(engine) as db:
            kinds = set(db.execute(select(AuditLog.resource_type).where(
                AuditLog.actor == manager.user_id, AuditLog.action == "read",
                AuditLog.resource_id == "tutor_id=t_jane")).scalars())
        assert kinds == {"tutor_risk", "student_data"}

        # Notes: refused input names the field and writes nothing; a good one is shown with its author.
        empty = client.post("/tutors/t_jane/notes", data={"csrf_token": csrf, "body": "   "})
        assert empty.status_code == 422 and "Write the note first" in empty.text and 'aria-invalid="true"' in empty.text
        long = client.post("/tutors/t_jane/notes", data={"csrf_token": csrf, "body": "x" * 4001})
        assert long.status_code == 422 and "at most 4000 characters" in long.text
        assert _count(engine, TutorNote) == 0
        added = client.post("/tutors/t_jane/notes", data={"csrf_token": csrf, "body": "Called Jane: workload."},
                            follow_redirects=False)
        assert added.status_code == 303 and added.headers["location"] == "/tutors/t_jane?done=note#notes"
        shown = _text(client.get(added.headers["location"]).text)
        assert "Note added." in shown and "Sarah Chen" in shown and "Called Jane: workload." in shown

        # Creating an intervention: input is checked first, an open case of the type is refused, then Temporal down.
        bad = client.post("/tutors/t_jane/interventions", data={"csrf_token": csrf, "intervention_type": "nope"})
        assert bad.status_code == 422 and "Choose one of" in bad.text
        first_session = client.post("/tutors/t_jane/interventions",
                                    data={"csrf_token": csrf, "intervention_type": "A3_first_session_checkin"})
        assert first_session.status_code == 422
        busy = client.post("/tutors/t_jane/interventions", data={"csrf_token": csrf, "intervention_type": "A1_coaching_tips"})
        assert busy.status_code == 409 and "iv-t_jane (A1_coaching_tips) is still open" in busy.text
        down = client.post("/tutors/t_jane/interventions",
                           data={"csrf_token": csrf, "intervention_type": "H1_coaching_session", "reason": "check in"})
        assert down.status_code == 503 and "Temporal is unreachable" in down.text and "check in" in down.text
        assert _count(engine, Intervention) == 1

        assert client.get("/tutors/nobody").status_code == 404

        # Downloads: the whole history and feedback as CSV (no student name or id), the page as a PDF.
        cases = client.get("/tutors/t_jane/interventions.csv")
        assert cases.status_code == 200 and cases.headers["content-type"].startswith("text/csv")
        lines = cases.text.splitlines()
        assert lines[0].startswith("intervention_id,recommended_date,") and lines[1].startswith("iv-t_jane,")
        feedback = client.get("/tutors/t_jane/feedback.csv")
        assert feedback.status_code == 200 and "Tutor seemed tired" in feedback.text
        assert feedback.text.splitlines()[1].split(",")[5:8] == ["3", "", "2"]  # rating, subject knowledge, communication
        assert STUDENT_NAME not in feedback.text and "pupil_" not in feedback.text
        report = client.get("/tutors/t_jane/profile.pdf")
        assert report.status_code == 200 and report.content.startswith(b"%PDF")
        assert 'filename="tutorpulse-tutor-t-jane-' in report.headers["content-disposition"]
        assert client.get("/tutors/nobody/profile.pdf").status_code == 404

        # A tutor, even on their own record, is not staff.
        tutor_csrf = sign_in(client, engine, tutor_user)
        assert client.get("/tutors/t_jane").status_code == 403
        refused = client.post("/tutors/t_jane/notes", data={"csrf_token": tutor_csrf, "body": "mine"})
        assert refused.status_code == 403 and _count(engine, TutorNote) == 1


async def test_create_intervention_starts_one_workflow_per_business_key(
        engine: Engine, settings: Settings, temporal_env, temporal_client, activity_executor) -> None:  # noqa: ANN001
    from worker import build_worker

    tutor_id = f"t_{settings.temporal_task_queue}"  # workflow ids are business keys: unique per test run
    seed_profile_tutor(engine, tutor_id)
    manager = make_user(engine, "ops_manager", name="Sarah Chen")
    app = create_app(settings)
    app.state.temporal = temporal_env.client
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp")
    async with build_worker(temporal_env.client, settings, activity_executor), api:
        csrf = sign_in(api, engine, manager)
        form = {"csrf_token": csrf, "intervention_type": "H1_coaching_session", "reason": "talk about workload"}
        first = await api.post(f"/tutors/{tutor_id}/interventions", data=form)
        assert first.status_code == 303, first.text
        assert "done=intervention" in first.headers["location"]
        case_id = re.search(r"case=([^&#]+)", first.headers["location"]).group(1)
        assert case_id.startswith(f"intervention-{tutor_id}-H1_coaching_session-manual-")
        again = await api.post(f"/tutors/{tutor_id}/interventions", data=form)
        assert again.status_code == 303 and "done=already" in again.headers["location"]

        with session_scope(engine) as db:
            rows = db.execute(select(Intervention).where(Intervention.tutor_id == tutor_id,
                                                         Intervention.intervention_type == "H1_coaching_session")).scalars().all()
        assert [r.intervention_id for r in rows] == [case_id]
        assert rows[0].status == "pending" and rows[0].owner_role == "ops_manager" and rows[0].matched_rules == ["manual"]
        assert rows[0].trigger_reason.startswith("Started by Sarah Chen from the tutor profile; churn score 82")
        assert rows[0].due_date is not None
        description = await temporal_env.client.get_workflow_handle(case_id).describe()
        assert description.workflow_type == "HumanTaskWorkflow" and description.status.name == "RUNNING"
        # The worker runs it: the task waits in the owner's queue with the SLA the rules give H1.
        handle = temporal_env.client.get_workflow_handle(case_id)
        # The workflow sets its SLA once its first activity has recorded the case: a query may come before that.
        deadline = asyncio.get_running_loop().time() + 10
        while (view := await handle.query("view", result_type=TaskView)).due_at is None:
            assert asyncio.get_running_loop().time() < deadline, view
            await asyncio.sleep(0.1)
        assert (view.status, view.assigned_to) == ("pending", None)
        page = await api.get(f"/tutors/{tutor_id}?done=already&case={case_id}")
        assert "That intervention was started already" in page.text and "talk about workload" in page.text
