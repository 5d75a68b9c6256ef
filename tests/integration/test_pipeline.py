"""The spine end to end on a real Temporal dev server, on SQLite and PostgreSQL:
ingestion API -> tutor workflow -> metrics + churn score -> rules -> intervention workflows -> queue -> completion."""
from __future__ import annotations

import asyncio
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
from domain.users.service import ensure_demo_staff
from rules.scoring import active_scoring_rules
from tests.auth import as_role, bearer
from tests.factories import seed_people, session_payload
from tests.integration.pipeline_helpers import eventually, troubled_history
from worker import build_worker
from workflows.inputs import SweepInput
from workflows.program import ProgramWorkflow
from workflows.tutor_lifecycle import TutorLifecycleWorkflow
from workflows.periodic import SweepWorkflow


def _api(settings: Settings, env: WorkflowEnvironment) -> httpx.AsyncClient:
    """A client signed in as the admin: it ingests and edits rules; queue calls pass a staff member's token."""
    app = create_app(settings)
    app.state.temporal = env.client  # the same loop as the test: no second connection needed
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp",
                             headers=as_role(app.state.engine, "admin"))


def _status(engine: Engine, intervention_id: str) -> str | None:
    with session_scope(engine) as db:
        row = db.get(Intervention, intervention_id)
        return row.status if row else None


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

        # Critical + high-reschedule pattern + low ratings in its subject, by rules/interventions.yaml. H1 needs
        # 7 days at High/Critical and H4 reduced activity: neither holds on a tutor's first troubled day.
        expected = {"A1_coaching_tips", "A2_training_module", "A4_reschedule_alert", "H3_pip"}

        def interventions():  # noqa: ANN202
            with session_scope(engine) as db:
                rows = db.execute(select(Intervention).where(Intervention.tutor_id == t2,
                                                             Intervention.parent_id.is_(None))).scalars().all()
                return rows if {r.intervention_type for r in rows} == expected else None

        rows = await eventually(interventions, what="t2 interventions")
        by_type = {r.intervention_type: r for r in rows}
        assert by_type["H3_pip"].rules_version == "tutor_interventions@v2" and by_type["H3_pip"].rules_hash
        assert by_type["H3_pip"].matched_rules == ["critical_pip"] and by_type["H3_pip"].risk_level == "Critical"

        def automated_sent():  # noqa: ANN202
            with session_scope(engine) as db:
                return db.execute(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.intervention_id == by_type["A1_coaching_tips"].intervention_id,
                    OutboxMessage.channel == "in_app")).scalar_one() == 1

        await eventually(automated_sent, what="automated tips sent in-app")

        # The PIP's kickoff waits for a manager's approval; People Ops then works it from the queue.
        with session_scope(engine) as db:
            ensure_demo_staff(db)
        sarah, marcus = bearer(engine, "u_sarah_chen"), bearer(engine, "u_marcus_reed")
        pip = by_type["H3_pip"].intervention_id
        kickoff = f"{pip}-kickoff"
        await eventually(lambda: _status(engine, kickoff) == "needs_approval", what="PIP kickoff task")
        queue = await api.get("/api/v1/queue", params={"scope": "all", "status": "needs_approval"}, headers=sarah)
        # Only the kickoff waits for approval; the program row itself is not a second thing to approve.
        assert kickoff in {i["intervention_id"] for i in queue.json()["items"]} and _status(engine, pip) == "pending"
        assert pip not in {i["intervention_id"] for i in queue.json()["items"]}
        r = await api.post(f"/api/v1/queue/{kickoff}/claim", headers=marcus)
        assert r.status_code == 409 and "approval" in r.json()["detail"]
        assert (await api.post(f"/api/v1/queue/{kickoff}/approve", headers=sarah)).status_code == 200
        assert (await api.post(f"/api/v1/queue/{kickoff}/claim", headers=marcus)).status_code == 200
        r = await api.post(f"/api/v1/queue/{kickoff}/complete", headers=marcus,
                           json={"outcome": "no_change", "notes": "goals agreed"})
        assert r.status_code == 200, r.text
        await eventually(lambda: _status(engine, pip) == "in_progress", what="PIP running")
        handle = temporal_env.client.get_workflow_handle_for(ProgramWorkflow.run, pip)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        r = await api.post(f"/api/v1/queue/{pip}/cancel", headers=sarah, json={"reason": "tutor left the platform"})
        assert r.status_code == 200, r.text
        result = await handle.result()
        assert result.status == "cancelled" and _status(engine, pip) == "cancelled"

        # An admin publishes v3, under which t2's metrics no longer call for coaching tips. The next evaluation
        # (a new session) runs v3 without a restart: the lifecycle cancels the open A1 and starts no duplicates.
        v2 = (await api.get("/api/v1/rules/tutor_interventions/versions/2")).json()["content"]
        v3 = v2.replace("      - {field: metrics_below_threshold, op: gt, value: 0}",
                        "      - {field: metrics_below_threshold, op: gt, value: 50}")
        v3 = v3.replace("{risk_level: Medium, metrics_below_threshold: 2}\n        expect: [A1_coaching_tips]",
                        "{risk_level: Medium, metrics_below_threshold: 51}\n        expect: [A1_coaching_tips]")
        r = await api.post("/api/v1/rules/tutor_interventions/draft/publish", json={"content": v3})
        assert r.status_code == 200 and r.json()["version"] == 3, r.text
        before = len(rows)
        a1 = by_type["A1_coaching_tips"].intervention_id
        r = await api.post("/api/v1/sessions", json=session_payload(20, tutor=t2, student="student_3", at=now))
        assert r.status_code == 201
        await eventually(lambda: _pending(engine) == 0, what="re-evaluation")
        await eventually(lambda: _status(engine, a1) == "cancelled", what="A1 cancelled by the lifecycle")
        with session_scope(engine) as db:
            assert "no longer matched under tutor_interventions@v3" in db.get(Intervention, a1).notes
            # No mail server runs in this test: the email still being retried was withdrawn, not left queued.
            email = db.get(OutboxMessage, f"{a1}:message:email")
            assert (email.status, email.last_error) == ("failed", "case cancelled before delivery")
        state = await temporal_env.client.get_workflow_handle_for(TutorLifecycleWorkflow.run, f"tutor-{t2}").query(
            TutorLifecycleWorkflow.state)
        assert state.evaluations >= 2 and a1 in state.cancelled_interventions
        assert len(await eventually(interventions, what="interventions")) == before

        # Behaviour events re-evaluate their tutor as well (engagement is part of the score).
        client_state = temporal_env.client.get_workflow_handle_for(TutorLifecycleWorkflow.run, f"tutor-{t1}")
        evaluations = (await client_state.query(TutorLifecycleWorkflow.state)).evaluations
        r = await api.post("/api/v1/events", json={"event_id": f"ev_{t1}_login", "tutor_id": t1, "event_type": "login",
                                                   "event_timestamp": now.isoformat()})
        assert r.status_code == 201, r.text

        async def evaluated_again() -> bool:
            return (await client_state.query(TutorLifecycleWorkflow.state)).evaluations > evaluations

        for _ in range(60):
            if await evaluated_again():
                break
            await asyncio.sleep(0.5)
        assert await evaluated_again()


async def test_sweep_signals_sessions_ingested_while_temporal_was_down(
        engine: Engine, settings: Settings, temporal_env: WorkflowEnvironment, temporal_client,
        activity_executor) -> None:  # noqa: ANN001
    (t1,) = seed_people(engine, tutors=1, students=1, tag=settings.temporal_task_queue)
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp",
                                 headers=as_role(engine, "service")) as api:
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
