"""SLA timers on the time-skipping test server: a 48-hour SLA escalates after 48 hours, not before,
and a completion afterwards still closes the case."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention
from tests.conftest import temporal_binary
from tests.factories import seed_people
from tests.integration.pipeline_helpers import eventually
from worker import build_worker
from workflows.inputs import CompleteTaskSignal, InterventionPlan
from workflows.intervention import InterventionWorkflow


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_binary("temporal-test-server"))
    try:
        yield env
    finally:
        await env.shutdown()


def _plan(tutor_id: str, sla_hours: float, time_scale: float) -> InterventionPlan:
    return InterventionPlan(
        intervention_id=f"intervention-{tutor_id}-H1_coaching_session-{uuid.uuid4().hex[:6]}", tutor_id=tutor_id,
        intervention_type="H1_coaching_session", kind="human", title="Coaching session", trigger_reason="test",
        recommended_at=utcnow(), rules_version="tutor_interventions@v1", rules_hash="x" * 64,
        matched_rules=["high_risk"], owner_role="ops_manager", escalate_to_role="ops_manager",
        sla_seconds=sla_hours * 3600 * time_scale,
    )


def _row(engine: Engine, intervention_id: str) -> Intervention:
    with session_scope(engine) as db:
        return db.get(Intervention, intervention_id)


async def test_sla_lapse_escalates_then_completion_closes(engine: Engine, settings: Settings, skipping_env: WorkflowEnvironment,
                                                          activity_executor) -> None:  # noqa: ANN001
    (tutor,) = seed_people(engine, tutors=1, students=0)
    plan = _plan(tutor, sla_hours=48, time_scale=settings.time_scale)
    async with build_worker(skipping_env.client, settings, activity_executor):
        handle = await skipping_env.client.start_workflow(InterventionWorkflow.run, plan, id=plan.intervention_id,
                                                          task_queue=settings.temporal_task_queue)
        row = await eventually(lambda: _row(engine, plan.intervention_id), what="task recorded")
        assert row.status == "pending" and row.owner_role == "ops_manager" and row.title == "Coaching session"
        assert row.due_date == row.created_at + timedelta(hours=48)

        await skipping_env.sleep(timedelta(hours=47))
        assert _row(engine, plan.intervention_id).escalated_at is None
        assert await handle.query(InterventionWorkflow.status) == "waiting"

        await skipping_env.sleep(timedelta(hours=2))
        escalated = await eventually(lambda: _row(engine, plan.intervention_id).escalated_at, what="escalation")
        assert escalated is not None
        assert _row(engine, plan.intervention_id).escalated_to_role == "ops_manager"

        await handle.signal(InterventionWorkflow.complete, CompleteTaskSignal(outcome="no_change", notes="called twice"))
        result = await handle.result()
    assert result.escalated and result.outcome == "no_change"
    done = _row(engine, plan.intervention_id)
    assert done.status == "completed" and done.outcome == "no_change"


async def test_time_scale_shrinks_the_sla(engine: Engine, settings: Settings, skipping_env: WorkflowEnvironment,
                                          activity_executor) -> None:  # noqa: ANN001
    (tutor,) = seed_people(engine, tutors=1, students=0)
    scaled = settings.model_copy(update={"time_scale": 1 / 1440})
    plan = _plan(tutor, sla_hours=48, time_scale=scaled.time_scale)
    assert plan.sla_seconds == pytest.approx(120)
    async with build_worker(skipping_env.client, scaled, activity_executor):
        handle = await skipping_env.client.start_workflow(InterventionWorkflow.run, plan, id=plan.intervention_id,
                                                          task_queue=scaled.temporal_task_queue)
        await eventually(lambda: _row(engine, plan.intervention_id), what="task recorded")
        await skipping_env.sleep(timedelta(minutes=3))
        await eventually(lambda: _row(engine, plan.intervention_id).escalated_at, what="escalation after 2 minutes")
        await handle.signal(InterventionWorkflow.complete, CompleteTaskSignal(outcome="improved"))
        assert (await handle.result()).escalated
