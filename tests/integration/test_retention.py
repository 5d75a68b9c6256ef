"""Data retention and the append-only audit log, on SQLite and PostgreSQL.

The purge activity with a given "today": educational records a minute past the 7-year cutoff go (sessions with
their feedback, first-session bookings, tutor events, finished outbox messages), those a minute short of it stay,
and so do in-flight messages; audit rows follow the 3-year cutoff; deletes run in heartbeated batches and one
audit row records each run. The database triggers (migration 0009) refuse any UPDATE of an audit row and any
DELETE of one younger than 3 years, whoever asks, the retention job included. The workflow runs end to end on the
Temporal dev server, started by hand and by its Schedule, which follows the configured cron.
"""
from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer, Worker

from activities.retention import ACTOR, RetentionActivities
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.audit.models import AuditLog
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.first_sessions.models import FirstSessionAlert
from domain.interventions.models import OutboxMessage
from domain.sessions.models import TutoringSession
from tests.factories import intervention_row, seed_people
from workflows.retention import PurgeInput, RetentionInput, RetentionResult, RetentionWorkflow
from workflows.retention_schedule import ensure_retention_schedule, retention_schedule_id

MINUTE = timedelta(minutes=1)
APPEND_ONLY = "audit_log is append-only"
BOUND = timedelta(seconds=20)  # a workflow stuck on a failing task fails the test instead of hanging it


def _seed(engine: Engine, settings: Settings, today: datetime) -> None:
    """Rows a minute past each cutoff (names start "old") and a minute short of it ("young")."""
    record_cut = today - timedelta(days=settings.record_retention_days)
    audit_cut = today - timedelta(days=settings.audit_retention_days)
    old, young = record_cut - MINUTE, record_cut + MINUTE
    tutor = seed_people(engine, tutors=1, students=1)[0]
    with session_scope(engine) as db:
        for name, at in [*((f"old{i}", old - i * MINUTE) for i in range(5)), ("young", young)]:
            db.add(TutoringSession(session_id=name, tutor_id=tutor, student_id="student_1", session_number=1,
                                   scheduled_start=at, duration_minutes=60, subject="Mathematics"))
        db.flush()  # sessions before the feedback that references them
        for name in ("old0", "old2", "old4", "young"):
            db.add(StudentFeedback(feedback_id=f"fb_{name}", session_id=name, student_id="student_1", tutor_id=tutor,
                                   overall_rating=4, submitted_at=young + timedelta(hours=2)))
        for name, at in [("old", old), ("young", young)]:
            db.add(FirstSessionAlert(alert_id=name, tutor_id=tutor, student_id="student_1", subject="Mathematics",
                                     scheduled_start=at, probability=0.2, threshold=0.5, model_version="m1",
                                     rules_version="r1", rules_hash="h", status="below_threshold"))
        for name, at in [("old0", old), ("old1", old), ("old2", old), ("young", young)]:
            db.add(TutorEvent(event_id=name, tutor_id=tutor, event_type="login", event_timestamp=at))
        db.add(intervention_row("iv", tutor, "A1", recommended=old, kind="automated"))
        db.flush()
        for name, status, sent in [("old_sent", "sent", old), ("old_failed", "failed", None),
                                   ("old_queued", "queued", None), ("young_sent", "sent", young)]:
            db.add(OutboxMessage(message_id=name, intervention_id="iv", tutor_id=tutor, channel="email", subject="s",
                                 body="b", status=status, sent_at=sent, created_at=old if name.startswith("old") else young))
        for name, at in [("old0", audit_cut - MINUTE), ("old1", audit_cut - 2 * MINUTE),
                         ("old2", audit_cut - 3 * MINUTE), ("young", audit_cut + MINUTE)]:
            db.add(AuditLog(at=at, actor="user:ops", action="read", resource_type="session", resource_id=name))


def _remaining(engine: Engine) -> dict[str, set[str]]:
    with session_scope(engine) as db:
        return {
            "sessions": set(db.execute(select(TutoringSession.session_id)).scalars()),
            "student_feedback": set(db.execute(select(StudentFeedback.feedback_id)).scalars()),
            "first_session_alerts": set(db.execute(select(FirstSessionAlert.alert_id)).scalars()),
            "tutor_events": set(db.execute(select(TutorEvent.event_id)).scalars()),
            "outbox": set(db.execute(select(OutboxMessage.message_id)).scalars()),
            "audit_log": set(db.execute(select(AuditLog.resource_id).where(AuditLog.actor != ACTOR)).scalars()),
        }


KEPT = {"sessions": {"young"}, "student_feedback": {"fb_young"}, "first_session_alerts": {"young"},
        "tutor_events": {"young"}, "outbox": {"old_queued", "young_sent"}, "audit_log": {"young"}}
DELETED = {"student_feedback": 3, "sessions": 5, "first_session_alerts": 1, "tutor_events": 3, "outbox": 2,
           "audit_log": 3}


def _runs(engine: Engine) -> list[AuditLog]:
    with session_scope(engine) as db:
        return list(db.execute(select(AuditLog).where(AuditLog.actor == ACTOR)).scalars())


def test_purge_deletes_past_the_cutoffs_in_batches_and_audits_the_run(engine: Engine, settings: Settings) -> None:
    # A "today" 400 days back: the cutoffs follow the given day, not the clock.
    today = utcnow() - timedelta(days=400)
    _seed(engine, settings, today)
    env = ActivityEnvironment()
    beats: list[dict[str, int]] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    acts = RetentionActivities(engine=engine, settings=settings)

    result = env.run(acts.purge_expired, PurgeInput(as_of=today.isoformat(), batch_size=2))

    assert result.deleted == DELETED
    assert result.record_cutoff == (today - timedelta(days=settings.record_retention_days)).isoformat()
    assert _remaining(engine) == KEPT
    # One heartbeat per committed batch: five expired sessions in batches of two are three transactions.
    assert [b["sessions"] for b in beats if b["first_session_alerts"] == 0] == [2, 4, 5]
    assert beats[-1] == DELETED
    [run] = _runs(engine)
    assert run.action == "write" and run.resource_type == "retention"
    assert run.details["deleted"] == DELETED and run.details["as_of"] == today.isoformat()

    # A retried attempt of the same run: nothing left to delete, the predecessor's heartbeated counts carried on,
    # and the run is not logged twice.
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[{"sessions": 5, "audit_log": 3}])
    again = env.run(acts.purge_expired, PurgeInput(as_of=today.isoformat(), batch_size=2))
    assert again.deleted["sessions"] == 5 and again.deleted["tutor_events"] == 0
    assert len(_runs(engine)) == 1 and _remaining(engine) == KEPT


def test_audit_rows_cannot_be_changed_or_deleted_before_three_years(engine: Engine, settings: Settings) -> None:
    now = utcnow()
    with session_scope(engine) as db:
        for name, age in [("fresh", 1), ("two_years", 730), ("almost", 1094), ("ancient", 1100)]:
            db.add(AuditLog(at=now - timedelta(days=age), actor="user:ops", action="read", resource_type="student",
                            resource_id=name))

    for statement in (update(AuditLog).values(actor="user:someone_else"),
                      update(AuditLog).where(AuditLog.resource_id == "ancient").values(details={"x": 1}),
                      delete(AuditLog).where(AuditLog.resource_id == "fresh"),
                      delete(AuditLog).where(AuditLog.resource_id == "almost"),
                      delete(AuditLog)):
        with pytest.raises(IntegrityError, match=APPEND_ONLY), session_scope(engine) as db:
            db.execute(statement)
    with pytest.raises(IntegrityError, match=APPEND_ONLY), session_scope(engine) as db:  # through the ORM
        db.execute(select(AuditLog).where(AuditLog.resource_id == "fresh")).scalar_one().actor = "user:forged"
    with session_scope(engine) as db:
        rows = {r.resource_id: r for r in db.execute(select(AuditLog)).scalars()}
        assert set(rows) == {"fresh", "two_years", "almost", "ancient"}
        assert {r.actor for r in rows.values()} == {"user:ops"} and rows["ancient"].details == {}
        # Past the 3-year floor a delete is allowed: that is the retention job's (only) work.
        db.execute(delete(AuditLog).where(AuditLog.resource_id == "ancient"))

    # A retention run with a wrong "today" (two years ahead) is refused by the database too: young rows stay.
    acts = RetentionActivities(engine=engine, settings=settings)
    with pytest.raises(IntegrityError, match=APPEND_ONLY):
        ActivityEnvironment().run(acts.purge_expired, PurgeInput(as_of=(now + timedelta(days=730)).isoformat()))
    with session_scope(engine) as db:
        assert set(db.execute(select(AuditLog.resource_id)).scalars()) == {"fresh", "two_years", "almost"}


def _worker(client: Client, engine: Engine, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    acts = RetentionActivities(engine=engine, settings=settings)
    return Worker(client, task_queue=settings.temporal_task_queue, workflows=[RetentionWorkflow],
                  activities=[acts.purge_expired], activity_executor=executor)


async def test_workflow_purges_as_of_its_start(engine: Engine, settings: Settings, temporal_env,  # noqa: ANN001
                                               temporal_client: Client, activity_executor: ThreadPoolExecutor) -> None:
    started = utcnow()
    _seed(engine, settings, started)  # a minute either side of cutoffs counted from now, the workflow's start
    q = settings.temporal_task_queue
    async with _worker(temporal_env.client, engine, settings, activity_executor):
        handle = await temporal_client.start_workflow(RetentionWorkflow.run, RetentionInput(batch_size=2),
                                                      id=f"retention-{q}", task_queue=q, execution_timeout=BOUND)
        result: RetentionResult = await handle.result()
    assert started <= datetime.fromisoformat(result.as_of) <= utcnow()
    assert result.deleted == DELETED and _remaining(engine) == KEPT
    [run] = _runs(engine)
    assert run.resource_id == f"retention-{q}/{handle.result_run_id}" and run.details["deleted"] == DELETED
    # Deterministic: the recorded history replays against the workflow code without a nondeterminism error.
    await Replayer(workflows=[RetentionWorkflow]).replay_workflow(await handle.fetch_history())


async def test_schedule_follows_the_configured_cron_and_starts_the_run(
        engine: Engine, settings: Settings, temporal_env, temporal_client: Client,  # noqa: ANN001
        activity_executor: ThreadPoolExecutor) -> None:
    custom = settings.model_copy(update={"retention_cron": "45 2 * * *"})
    await ensure_retention_schedule(temporal_client, custom)
    handle = temporal_client.get_schedule_handle(retention_schedule_id(custom))
    try:
        desc = await handle.describe()
        # The server stores a cron string as a calendar spec: compare what fires, not the text.
        [calendar] = desc.schedule.spec.calendars
        assert [r.start for r in calendar.minute] == [45] and [r.start for r in calendar.hour] == [2]
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "RetentionWorkflow" and action.task_queue == custom.temporal_task_queue

        await ensure_retention_schedule(temporal_client, custom.model_copy(update={"retention_cron": "0 4 * * *"}))
        [calendar] = (await handle.describe()).schedule.spec.calendars
        assert [r.start for r in calendar.hour] == [4]  # a restarted worker brings the schedule in line

        # Triggered now, the scheduled action runs the purge end to end (an empty database: only its audit row).
        async with _worker(temporal_env.client, engine, custom, activity_executor):
            await handle.trigger()
            workflow_id = await _first_started(handle)
            result = await asyncio.wait_for(
                temporal_client.get_workflow_handle_for(RetentionWorkflow.run, workflow_id).result(), BOUND.seconds)
        assert workflow_id.startswith(f"retention-{custom.temporal_task_queue}")
        assert set(result.deleted.values()) == {0}
        assert [r.details["deleted"]["sessions"] for r in _runs(engine)] == [0]
    finally:
        await handle.delete()


async def _first_started(handle) -> str:  # noqa: ANN001
    for _ in range(100):  # the schedule's recent actions show up within moments of the trigger
        actions = (await handle.describe()).info.recent_actions
        if actions:
            return actions[0].action.workflow_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"schedule {handle.id} started no workflow after a trigger)")
