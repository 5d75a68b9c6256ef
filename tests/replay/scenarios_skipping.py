"""Time-skipping server (temporal-test-server) scenarios: the intervention workflows, whose SLAs and follow-ups
are days long.

H1 reminder + escalation, H4 claim/complete, an H3 PIP (approval, kickoff, extension, weekly check-ins, outcome
review), A1 by email (tutor responds; another cancelled by the rules), A2 with its training follow-up, A4 whose
follow-up escalates to a manager review, and ``PRE_PATCH``: an H1 run by the workflow as it was *before* the
reminder patch (tests/replay/variants.py). ``record_skipping`` runs the wanted ones, each on a server of its own.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from core.db import get_engine, session_scope
from core.types import utcnow
from domain.events.schemas import TutorEventIn
from domain.events.service import ingest_events
from domain.feedback import links
from domain.notifications.sink import read_mail
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from tests.auth import account
from tests.factories import seed_people, session_payload
from tests.integration.pipeline_helpers import eventually
from tests.replay.common import Ctx, Recorder, Scenario, binary, log, make_settings, plan_for, row, workflow_worker
from tests.replay.variants import PrePatchHumanTaskWorkflow
from workflows.automated import AutomatedInterventionWorkflow
from workflows.feedback_reminder import FeedbackReminderResult, reminder_workflow_id, start_feedback_reminder
from workflows.human_task import HumanTaskWorkflow
from workflows.inputs import TaskCommand
from workflows.program import ProgramWorkflow

SARAH = TaskCommand(actor="u_sarah", actor_role="ops_manager")
MARCUS = TaskCommand(actor="u_marcus", actor_role="people_ops")
MEDIUM = {"churn_score": 40.0, "risk_level": "Medium", "metrics_below_threshold": 2, "tier": "Strong"}
HIGH_SKILL_GAP = {"churn_score": 58.0, "risk_level": "High", "weakest_subject_rating_30d": 3.2,
                  "weakest_subject": "Mathematics"}
HIGH_RESCHEDULE = {"churn_score": 62.0, "risk_level": "High", "flag_high_reschedule": True}
CRITICAL = {"churn_score": 82.0, "risk_level": "Critical"}


async def h1_reminder_escalation(ctx: Ctx, name: str = "human_task_h1_reminder_escalation") -> None:
    """H1 nobody picks up: reminder 12 h before the 48 h SLA, escalation at it, then a manager closes it."""
    plan = plan_for(ctx.settings, ctx.tutor, "H1_coaching_session", {"churn_score": 70.0, "risk_level": "High"})
    assert plan.sla_seconds and plan.reminder_before_seconds, "H1 lost its SLA or reminder in the rules file"
    handle = await ctx.start(HumanTaskWorkflow.run, plan)
    await eventually(lambda: row(ctx.engine, plan.intervention_id), what="H1 recorded")
    await ctx.env.sleep(timedelta(hours=37))  # past the reminder (36 h), before the SLA (48 h)
    if name == "human_task_pre_reminder_patch":
        await asyncio.sleep(1)
        assert row(ctx.engine, plan.intervention_id).reminded_at is None, "the pre-patch workflow sent a reminder"
    else:
        await eventually(lambda: row(ctx.engine, plan.intervention_id).reminded_at, what="H1 reminder")
    await ctx.env.sleep(timedelta(hours=12))
    await eventually(lambda: row(ctx.engine, plan.intervention_id).escalated_at, what="H1 escalation")
    await handle.execute_update(HumanTaskWorkflow.claim, SARAH)
    await handle.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_sarah", actor_role="ops_manager", outcome="improved", notes="coached after the escalation"))
    result = await handle.result()
    assert result.status == "completed" and result.escalated
    await ctx.rec.save(handle, name)


async def h1_pre_reminder_patch(ctx: Ctx) -> None:
    await h1_reminder_escalation(ctx, name="human_task_pre_reminder_patch")


async def h4_claim_complete(ctx: Ctx) -> None:
    """H4 worked from the queue: a refused completion, claim, release, a manager's assignment, completion."""
    plan = plan_for(ctx.settings, ctx.tutor, "H4_retention_interview", {"churn_score": 66.0, "risk_level": "High"})
    handle = await ctx.start(HumanTaskWorkflow.run, plan)
    done = TaskCommand(actor="u_marcus", actor_role="people_ops", outcome="improved", notes="talked it through")
    try:
        await handle.execute_update(HumanTaskWorkflow.complete, done)
    except WorkflowUpdateFailedError as refused:  # the validator refuses it: nothing reaches the history
        assert "claim or assign" in str(refused.cause)
    else:
        raise AssertionError("completing an unclaimed task was accepted")
    await handle.execute_update(HumanTaskWorkflow.claim, MARCUS)
    await handle.execute_update(HumanTaskWorkflow.unclaim, MARCUS)
    await handle.execute_update(HumanTaskWorkflow.assign, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                      assignee="u_marcus"))
    await handle.execute_update(HumanTaskWorkflow.complete, done)
    assert (await handle.result()).outcome == "improved"
    await ctx.rec.save(handle, "human_task_h4_claim_complete")


async def h3_pip_program(ctx: Ctx) -> None:
    """H3 PIP: approval, kickoff, a 7-day extension, five weekly check-ins, the outcome review; the unworked
    check-ins close with the program."""
    plan = plan_for(ctx.settings, ctx.tutor, "H3_pip", CRITICAL)
    pid, client = plan.intervention_id, ctx.client
    handle = await ctx.start(ProgramWorkflow.run, plan)
    await eventually(lambda: (r := row(ctx.engine, f"{pid}-kickoff")) and r.status == "needs_approval",
                     what="PIP kickoff")
    kickoff = client.get_workflow_handle(f"{pid}-kickoff")
    await kickoff.execute_update(HumanTaskWorkflow.approve, SARAH)
    await kickoff.execute_update(HumanTaskWorkflow.claim, MARCUS)
    await kickoff.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_marcus", actor_role="people_ops", outcome="no_change", notes="goals agreed"))
    await eventually(lambda: row(ctx.engine, pid).status == "in_progress", what="PIP started")
    await handle.execute_update(ProgramWorkflow.extend, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                    extend_days=7))
    for week in (1, 2, 3, 4, 5):  # 37 days with the extension: check-ins on days 7 .. 35
        await ctx.env.sleep(timedelta(days=7))
        await eventually(lambda w=week: row(ctx.engine, f"{pid}-checkin-{w}"), what=f"check-in {week}")
        if week == 1:
            c1 = client.get_workflow_handle(f"{pid}-checkin-1")
            await c1.execute_update(HumanTaskWorkflow.claim, MARCUS)
            await c1.execute_update(HumanTaskWorkflow.complete, TaskCommand(
                actor="u_marcus", actor_role="people_ops", outcome="no_change", notes="on track"))
    await ctx.env.sleep(timedelta(days=3))
    await eventually(lambda: row(ctx.engine, f"{pid}-review"), what="outcome review")
    review = client.get_workflow_handle(f"{pid}-review")
    await review.execute_update(HumanTaskWorkflow.assign, TaskCommand(actor="u_sarah", actor_role="ops_manager",
                                                                      assignee="u_marcus"))
    await review.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_marcus", actor_role="people_ops", outcome="improved", notes="met all goals"))
    result = await handle.result()
    assert result.status == "completed" and result.outcome == "improved"
    await eventually(lambda: row(ctx.engine, f"{pid}-checkin-2").status == "cancelled", what="check-ins closed")
    for suffix in ("checkin-1", "checkin-2", "review"):
        try:
            await client.get_workflow_handle(f"{pid}-{suffix}").result()
        except Exception:  # noqa: BLE001, S110 - a check-in cancelled with its program ends as a cancellation
            pass
    await ctx.rec.save(handle, "program_h3_pip")
    await ctx.rec.save(kickoff, "human_task_pip_kickoff_approval")
    await ctx.rec.save(client.get_workflow_handle(f"{pid}-checkin-1"), "human_task_pip_checkin_completed")
    await ctx.rec.save(client.get_workflow_handle(f"{pid}-checkin-2"), "human_task_pip_checkin_cancelled_with_program")
    await ctx.rec.save(review, "human_task_pip_review")


async def a1_email(ctx: Ctx) -> None:
    """A1 by email (to the local sink); the tutor responds a day later and the case completes. A second A1, a
    week on, is cancelled when the rules no longer ask for it."""
    plan = plan_for(ctx.settings, ctx.tutor, "A1_coaching_tips", MEDIUM)
    assert "email" in plan.channels
    mails = len(read_mail(ctx.settings.mail_dir))
    handle = await ctx.start(AutomatedInterventionWorkflow.run, plan)
    await eventually(lambda: len(read_mail(ctx.settings.mail_dir)) == mails + 1, what="A1 email delivered")
    await ctx.env.sleep(timedelta(days=1))
    await handle.signal(AutomatedInterventionWorkflow.tutor_responded)
    assert (await handle.result()).status == "completed"
    await ctx.rec.save(handle, "automated_a1_email_responded")

    later = plan_for(ctx.settings, ctx.tutor, "A1_coaching_tips", MEDIUM, at=utcnow() + timedelta(days=1))
    h2 = await ctx.start(AutomatedInterventionWorkflow.run, later)
    await eventually(lambda: len(read_mail(ctx.settings.mail_dir)) == mails + 2, what="second A1 email delivered")
    await ctx.env.sleep(timedelta(days=1))
    await h2.signal(AutomatedInterventionWorkflow.rules_unmatched, "no longer matched: risk Low")
    assert (await h2.result()).status == "cancelled"
    await ctx.rec.save(h2, "automated_a1_rules_unmatched")


async def a2_training_follow_up(ctx: Ctx) -> None:
    """A2: the module suggestion goes out; the tutor completes a training; the 7-day follow-up finds it."""
    plan = plan_for(ctx.settings, ctx.tutor, "A2_training_module", HIGH_SKILL_GAP)
    assert plan.follow_up == "check_training"
    handle = await ctx.start(AutomatedInterventionWorkflow.run, plan)
    await eventually(lambda: row(ctx.engine, plan.intervention_id), what="A2 recorded")
    await ctx.env.sleep(timedelta(days=2))
    with session_scope(ctx.engine) as db:
        ingest_events(db, [TutorEventIn(event_id=f"training_{ctx.tutor}_a2", tutor_id=ctx.tutor,
                                        event_type="training_completed",
                                        event_timestamp=plan.recommended_at + timedelta(days=1),
                                        metadata={"module": "engagement-basics", "duration_minutes": 15})], many=True)
    assert (await handle.result()).status == "completed"
    follow_up = row(ctx.engine, plan.intervention_id).follow_up_result
    assert follow_up and follow_up.startswith("1 training"), follow_up
    await ctx.rec.save(handle, "automated_a2_training_follow_up")


async def a4_follow_up_escalates(ctx: Ctx) -> None:
    """A4: the rescheduling pattern still holds 14 days on, so the follow-up opens a manager review (a
    HumanTaskWorkflow child), which the manager then completes."""
    with session_scope(ctx.engine) as db:
        now = utcnow()
        db.add(ChurnPrediction(tutor_id=ctx.tutor, prediction_date=now.date(), as_of=now, churn_score=62.0,
                               risk_level="High", facts=HIGH_RESCHEDULE, model_version="replay-recording"))
    plan = plan_for(ctx.settings, ctx.tutor, "A4_reschedule_alert", HIGH_RESCHEDULE)
    assert plan.follow_up == "escalate_if" and plan.escalation_plan is not None
    handle = await ctx.start(AutomatedInterventionWorkflow.run, plan)
    result = await handle.result()
    assert result.status == "completed" and result.escalated, result
    review = ctx.client.get_workflow_handle(plan.escalation_plan.intervention_id)
    await eventually(lambda: row(ctx.engine, plan.escalation_plan.intervention_id), what="A4 manager review")
    await review.execute_update(HumanTaskWorkflow.claim, SARAH)
    await review.execute_update(HumanTaskWorkflow.complete, TaskCommand(
        actor="u_sarah", actor_role="ops_manager", outcome="improved", notes="schedule fixed"))
    await review.result()
    await ctx.rec.save(handle, "automated_a4_follow_up_escalates")
    await ctx.rec.save(review, "human_task_a4_escalation_review")


async def feedback_reminder_sent(ctx: Ctx) -> None:
    """A feedback link issued for a session nobody rated: 24 h on, the student's account gets one reminder email."""
    session = session_payload(1, tutor=ctx.tutor, student="student_1", at=utcnow())
    with session_scope(ctx.engine) as db:
        ingest_sessions(db, [SessionIn.model_validate(session)], many=True)
    account(ctx.engine, "student", user_id="u_alex_replay", student_id="student_1")
    now = utcnow()
    _token, expires = links.sign(session["session_id"], now=now)  # as the link route issues it
    state = await start_feedback_reminder(
        ctx.client, session_id=session["session_id"], link_expires_at=expires,
        remind_at=now + timedelta(hours=ctx.settings.feedback_reminder_hours), task_queue=ctx.settings.temporal_task_queue)
    assert state == "scheduled", state
    handle = ctx.client.get_workflow_handle(reminder_workflow_id(session["session_id"]),
                                            result_type=FeedbackReminderResult)
    await ctx.env.sleep(timedelta(hours=25))
    result = await handle.result()
    assert result.outcome == "queued" and result.delivery == "sent", result
    await ctx.rec.save(handle, "feedback_reminder_sent")


SKIPPING = [
    Scenario(("human_task_h1_reminder_escalation",), h1_reminder_escalation),
    Scenario(("human_task_h4_claim_complete",), h4_claim_complete),
    Scenario(("program_h3_pip", "human_task_pip_kickoff_approval", "human_task_pip_checkin_completed",
              "human_task_pip_checkin_cancelled_with_program", "human_task_pip_review"), h3_pip_program),
    Scenario(("automated_a1_email_responded", "automated_a1_rules_unmatched"), a1_email),
    Scenario(("automated_a2_training_follow_up",), a2_training_follow_up),
    Scenario(("automated_a4_follow_up_escalates", "human_task_a4_escalation_review"), a4_follow_up_escalates),
    Scenario(("feedback_reminder_sent",), feedback_reminder_sent),
]
PRE_PATCH = Scenario(("human_task_pre_reminder_patch",), h1_pre_reminder_patch)


async def record_skipping(rec: Recorder, folder: Path, executor: ThreadPoolExecutor, sink_port: int) -> None:
    todo = [s for s in [*SKIPPING, PRE_PATCH] if rec.wants(s.names)]
    if not todo:
        return
    settings = make_settings(folder, "interventions", sink_port)
    engine = get_engine(settings.database_url)
    tutors = seed_people(engine, tutors=len(todo), students=1, tag="replay")
    for scenario, tutor in zip(todo, tutors, strict=True):
        log(f"  [time-skipping] {scenario.run.__name__}")
        # One server per scenario: its virtual clock is global, so an unfinished workflow of one would stall the next.
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
        try:
            workflows = [PrePatchHumanTaskWorkflow] if scenario is PRE_PATCH else None
            async with workflow_worker(env.client, settings, executor, workflows):
                await scenario.run(Ctx(env, settings, engine, rec, tutor))
        finally:
            await env.shutdown()
    engine.dispose()
