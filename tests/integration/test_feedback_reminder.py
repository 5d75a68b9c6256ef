"""The feedback reminder on the time-skipping server (temporal-test-server), on SQLite and PostgreSQL: issuing a
link schedules it; 24 hours on, the student gets one email with that same link through the outbox and the local
mail sink, unless feedback came first; a second link or a repeated step sends nothing more. Without Temporal the
link is still issued and says the reminder was not scheduled.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.feedback import reminders
from domain.interventions.models import OutboxMessage
from domain.notifications.sink import mail_files
from tests.auth import account, as_role
from tests.integration.auth_helpers import api_client, build_app
from tests.integration.test_feedback_flow_page import seed_feedback_world
from worker import build_worker
from workflows.feedback_reminder import FeedbackReminderResult, reminder_workflow_id

ALEX = "u_alex"  # the student's account: the reminder's recipient


@pytest.fixture
def reminder_settings(mail_settings: Settings) -> Settings:
    return mail_settings.model_copy(update={"public_url": "https://tutorpulse.example"})


def _outbox(engine: Engine) -> list[OutboxMessage]:
    """The reminders: outbox rows of no case (a submitted feedback also runs the tutor's own workflows)."""
    with session_scope(engine) as db:
        return list(db.execute(select(OutboxMessage).where(OutboxMessage.intervention_id.is_(None))).scalars())


def _mail_to_alex(mail_dir: Path) -> list[EmailMessage]:
    found = [message_from_bytes(f.read_bytes(), policy=default_policy) for f in mail_files(mail_dir)]
    return [m for m in found if m["To"] == f"{ALEX}@example.test"]


async def _issue(client, engine: Engine, session_id: str) -> dict:  # noqa: ANN001 - an httpx client
    response = await client.post("/api/v1/feedback/links", json={"session_id": session_id},
                                 headers=as_role(engine, "service"))
    assert response.status_code == 201, response.text
    return response.json()


async def test_one_reminder_with_the_same_link_when_no_feedback_came(
        engine: Engine, reminder_settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    w = seed_feedback_world(engine, reminder_settings.temporal_task_queue)
    account(engine, "student", user_id=ALEX, student_id="student_1")
    app = create_app(reminder_settings)
    app.state.temporal = skipping_env.client
    async with build_worker(skipping_env.client, reminder_settings, activity_executor), api_client(app) as client:
        issued = await _issue(client, engine, w["first"])
        assert issued["reminder"] == "scheduled" and issued["page_path"] == f"/feedback/{issued['token']}"
        assert (await _issue(client, engine, w["first"]))["reminder"] == "already_scheduled"  # one per session
        handle = skipping_env.client.get_workflow_handle(reminder_workflow_id(w["first"]),
                                                         result_type=FeedbackReminderResult)
        await skipping_env.sleep(timedelta(hours=23))
        assert _outbox(engine) == []  # not yet due
        await skipping_env.sleep(timedelta(hours=1, minutes=1))
        result = await handle.result()
        assert (result.outcome, result.delivery) == ("queued", "sent")
        assert (await _issue(client, engine, w["first"]))["reminder"] == "already_scheduled"  # done stays done

    (row,) = _outbox(engine)
    assert (row.message_id, row.intervention_id, row.recipient, row.status) == (
        reminders.message_id_for(w["first"]), None, ALEX, "sent")
    # Due 24 hours after the link was issued (the workflow's clock skipped there), not before.
    assert row.created_at >= datetime.fromisoformat(issued["expires_at"]) - timedelta(days=14) + timedelta(hours=24)
    (message,) = _mail_to_alex(reminder_settings.mail_dir)
    body = message.get_body().get_content()
    assert message["Subject"] == "How was your Mathematics session with Emily?"
    assert f"https://tutorpulse.example{issued['page_path']}" in body  # the very link the marketplace was given
    assert "Student 1" not in body and "Tran" not in body

    # The step itself is idempotent: run again, it finds its row and writes nothing.
    with session_scope(engine) as db:
        again = reminders.queue_reminder(db, w["first"], link_expires_at=datetime.fromisoformat(issued["expires_at"]),
                                         site_url=reminder_settings.site_url, now=utcnow() + timedelta(days=2))
    assert again == reminders.ReminderOutcome(reminders.Outcome.already_reminded)
    assert len(_outbox(engine)) == 1 and len(_mail_to_alex(reminder_settings.mail_dir)) == 1


async def test_no_reminder_once_feedback_came_and_none_scheduled_without_temporal(
        engine: Engine, reminder_settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    w = seed_feedback_world(engine, reminder_settings.temporal_task_queue)
    account(engine, "student", user_id=ALEX, student_id="student_1")
    app = create_app(reminder_settings)
    app.state.temporal = skipping_env.client
    async with build_worker(skipping_env.client, reminder_settings, activity_executor), api_client(app) as client:
        issued = await _issue(client, engine, w["second"])
        assert issued["reminder"] == "scheduled"
        assert (await client.post(issued["path"], json={"rating": 5})).status_code == 201
        await skipping_env.sleep(timedelta(hours=24, minutes=1))
        result = await skipping_env.client.get_workflow_handle(reminder_workflow_id(w["second"]),
                                                               result_type=FeedbackReminderResult).result()
        assert (result.outcome, result.message_id, result.delivery) == ("feedback_given", None, None)
    assert _outbox(engine) == [] and _mail_to_alex(reminder_settings.mail_dir) == []

    async with api_client(build_app(reminder_settings)) as client:  # Temporal unreachable: the link still comes
        issued = await _issue(client, engine, w["first"])
        assert issued["reminder"] == "not_scheduled" and issued["token"]
