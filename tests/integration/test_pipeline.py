"""The spine end to end on a real Temporal dev server, on SQLite and PostgreSQL:
ingestion API -> tutor workflow -> metrics + churn score -> rules -> intervention workflows -> queue -> completion."""
from __future__ import annotations

from datetime import date, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention, OutboxMessage
from domain.metrics.models import TutorPerformanceMetric
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor
from rules.scoring import active_scoring_rules
from tests.factories import seed_people, session_payload
from tests.integration.pipeline_helpers import eventually, troubled_history
from worker import build_worker
from workflows.inputs import SweepInput
from workflows.intervention import InterventionWorkflow
from workflows.tutor_lifecycle import TutorLifecycleWorkflow
from workflows.periodic import SweepWorkflow


def _api(settings: Settings, env: WorkflowEnvironment) -> httpx.AsyncClient:
    app = create_app(settings)
    app.state.temporal = env.client  # the same loop as the test: no second connection needed
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp")


def _pending(engine: Engine) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(TutoringSession).where(TutoringSession.evaluated_at.is_(None))).scalar_one()


async def test_session_to_intervention_to_completion(engine: Engine, settings: Settings, temporal_env: WorkflowEnvironment,
                                                     temporal_client, activity_executor) -> None:  # noqa: ANN001
    t1, t2 = seed_people(engine, tutors=2, students=3, tag=settings.temporal_task_queue)
    with session_scope(engine) as db:  # t2 is new: tenure risk on top of the troubled week
        db.get(Tutor, t2).onboarding_date = date.today() - timedelta(days=10)
    now = utcnow()
    async with build_worker(temporal_env.client, settings, activity_executor), _api(settings, temporal_env) as api:
        r = await api.post("/api/v1/sessions", json=[session_payload(1, tutor=t1, at=now)])
        assert r.status_code == 201 and r.json()["evaluation"] == "signalled"
        r = await api.post("/api/v1/sessions", json=troubled_history(t2, now))
        assert r.status_code == 201, r.text

        await eventually(lambda: _pending(engine) == 0, what="all sessions evaluated")

        def prediction(tutor: str):  # noqa: ANN202
            with session_scope(engine) as db:
                return db.execute(select(ChurnPrediction).where(ChurnPrediction.tutor_id == tutor)).scalar_one_or_none()

        critical = await eventually(lambda: prediction(t2), what="t2 prediction")
        assert critical.risk_level == "Critical", critical.contributing_factors
        assert {f["name"] for f in critical.flags} == {"poor_first_session", "high_reschedule", "no_show_risk"}
        assert critical.rules_version == active_scoring_rules(settings.rules_dir).version_label and critical.rules_hash
        assert prediction(t1).risk_level in {"Low", "Medium"}
        with session_scope(engine) as db:
            windows = set(db.execute(select(TutorPerformanceMetric.window).where(TutorPerformanceMetric.tutor_id == t2)).scalars())
        assert windows == {f"{d}day" for d in active_scoring_rules(settings.rules_dir).spec.windows_days} == {"7day", "30day", "90day"}

        # Critical + high-reschedule pattern + 30-day rating under 3.5, by rules/interventions.yaml:
        expected = {"A1_coaching_tips", "A2_training_module", "A4_reschedule_alert",
                    "H1_coaching_session", "H3_pip", "H4_retention_interview"}

        def interventions():  # noqa: ANN202
            with session_scope(engine) as db:
                rows = db.execute(select(Intervention).where(Intervention.tutor_id == t2)).scalars().all()
                return rows if {r.intervention_type for r in rows} == expected else None

        rows = await eventually(interventions, what="t2 interventions")
        by_type = {r.intervention_type: r for r in rows}
        assert by_type["H3_pip"].rules_version == "tutor_interventions@v1"
        assert "critical_risk" in by_type["H3_pip"].matched_rules
        assert by_type["H1_coaching_session"].due_date is not None

        def automated_done():  # noqa: ANN202
            with session_scope(engine) as db:
                row = db.get(Intervention, by_type["A1_coaching_tips"].intervention_id)
                has_message = db.execute(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.intervention_id == row.intervention_id)).scalar_one()
                return row.status == "completed" and has_message == 1

        await eventually(automated_done, what="automated tips sent")

        queue = await api.get("/api/v1/interventions", params={"status": "open", "kind": "human"})
        assert queue.status_code == 200
        task_ids = {item["intervention_id"] for item in queue.json()["items"]}
        pip = by_type["H3_pip"].intervention_id
        assert pip in task_ids

        handle = temporal_env.client.get_workflow_handle_for(InterventionWorkflow.run, pip)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        r = await api.post(f"/api/v1/interventions/{pip}/complete", json={"outcome": "improved", "notes": "agreed goals"})
        assert r.status_code == 202, r.text
        result = await handle.result()
        assert result.outcome == "improved" and not result.escalated
        with session_scope(engine) as db:
            done = db.get(Intervention, pip)
            assert done.status == "completed" and done.outcome == "improved" and done.notes == "agreed goals"

        # The same through the /queue page's form, as an ops user clicks it.
        coaching = by_type["H1_coaching_session"].intervention_id
        page = await api.get("/queue")
        assert coaching in page.text
        r = await api.post(f"/queue/{coaching}/complete", data={"outcome": "declined", "notes": "no answer"})
        assert r.status_code == 303, r.text
        result = await temporal_env.client.get_workflow_handle_for(InterventionWorkflow.run, coaching).result()
        assert result.outcome == "declined"
        assert coaching not in (await api.get("/queue")).text

        # A second evaluation (new session) must not start duplicates of the still-open cases.
        before = len(rows)
        r = await api.post("/api/v1/sessions", json=session_payload(20, tutor=t2, student="student_3", at=now))
        assert r.status_code == 201
        await eventually(lambda: _pending(engine) == 0, what="re-evaluation")
        state = await temporal_env.client.get_workflow_handle_for(TutorLifecycleWorkflow.run, f"tutor-{t2}").query(
            TutorLifecycleWorkflow.state)
        assert state.evaluations >= 2
        assert len(await eventually(interventions, what="interventions")) == before


async def test_sweep_signals_sessions_ingested_while_temporal_was_down(
        engine: Engine, settings: Settings, temporal_env: WorkflowEnvironment, temporal_client,
        activity_executor) -> None:  # noqa: ANN001
    (t1,) = seed_people(engine, tutors=1, students=1, tag=settings.temporal_task_queue)
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp") as api:
        r = await api.post("/api/v1/sessions", json=[session_payload(n, tutor=t1) for n in (1, 2)])
        assert r.json()["evaluation"] == "pending"
    assert _pending(engine) == 2
    async with build_worker(temporal_env.client, settings, activity_executor):
        await asyncio_sleep(1.2)  # past the sweep's grace period
        result = await temporal_env.client.execute_workflow(
            SweepWorkflow.run, SweepInput(grace_seconds=1), id=f"sweep-{settings.temporal_task_queue}",
            task_queue=settings.temporal_task_queue)
        assert result.tutors_signalled == 1
        await eventually(lambda: _pending(engine) == 0, what="swept sessions evaluated")


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
