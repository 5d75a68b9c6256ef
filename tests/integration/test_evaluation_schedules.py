"""The periodic evaluation on a real Temporal dev server, on SQLite and PostgreSQL: the daily rollup and the monthly
tier review (one workflow), the weekly 7-day moving averages, and the Temporal Schedules that run them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from temporalio.client import ScheduleSpec
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.db import session_scope
from domain.events.schemas import TutorEventIn
from domain.events.service import ingest_events
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from domain.tiers.models import TierCutoffs, TierHistory
from domain.trends.models import WeeklyTrend
from domain.tutors.models import Tutor
from tests.factories import seed_people, session_payload
from worker import build_worker
from workflows.inputs import RollupInput, TrendsInput
from workflows.periodic import PopulationRollupWorkflow, WeeklyTrendsWorkflow
from workflows.schedules import ensure_evaluation_schedules, evaluation_schedule_ids

MIDNIGHT = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def _seed(engine: Engine, tag: str) -> list[str]:
    """Six tutors teaching and logging in daily for 30 days, rated 3.6 .. 4.9; the last one stops 20 days before
    MIDNIGHT."""
    tutors = seed_people(engine, tutors=6, students=4, tag=tag)
    rows = []
    for t_index, tutor in enumerate(tutors):
        for day in range(1, 31):
            if t_index == 5 and day < 20 or day % 7 == 0:
                continue  # the quitter's recent days, and everyone's day off
            at = MIDNIGHT - timedelta(days=day) + timedelta(hours=14)
            rows.append(SessionIn.model_validate(session_payload(
                1 if day == 30 else 2, tutor=tutor, student=f"student_{1 + day % 4}", at=at,
                session_id=f"s_{tutor}_{day}", student_rating=round(3.6 + 0.26 * t_index, 1))))
    logins = [TutorEventIn(event_id=f"login_{tutor}_{day}", tutor_id=tutor, event_type="login",
                           event_timestamp=MIDNIGHT - timedelta(days=day) + timedelta(hours=13),
                           metadata={"session_prep_minutes": 12})
              for t_index, tutor in enumerate(tutors) for day in range(1, 31) if not (t_index == 5 and day < 20)]
    with session_scope(engine) as db:
        ingest_sessions(db, rows, many=True)
        ingest_events(db, logins, many=True)
    return tutors


async def test_rollup_review_and_trends_workflows(engine: Engine, settings: Settings, temporal_env: WorkflowEnvironment,
                                                  temporal_client, activity_executor) -> None:  # noqa: ANN001
    tutors = _seed(engine, settings.temporal_task_queue)
    q = settings.temporal_task_queue
    async with build_worker(temporal_env.client, settings, activity_executor):
        review = await temporal_client.execute_workflow(
            PopulationRollupWorkflow.run, RollupInput(review=True, as_of=MIDNIGHT), id=f"review-{q}", task_queue=q)
        assert review.review == "monthly_review" and review.tutors == 6
        assert review.active == 5  # the quitter has had no session for 19 days: inactive
        assert sum(review.tier_counts.values()) == 5

        with session_scope(engine) as db:
            cut = db.execute(select(TierCutoffs)).scalars().one()
            assert cut.population == 5 and cut.effective_date == MIDNIGHT.date() and cut.reason == "monthly_review"
            preds = {p.tutor_id: p for p in db.execute(select(ChurnPrediction)).scalars()}
            assert set(preds) == set(tutors) and all(p.prediction_date == MIDNIGHT.date() for p in preds.values())
            # The quitter is scored although no session arrived to trigger an evaluation.
            quitter = preds[tutors[5]]
            assert quitter.contributing_factors["availability_reduction"]["score"] == 100
            assert quitter.churn_score > max(p.churn_score for t, p in preds.items() if t != tutors[5])
            assert db.get(Tutor, tutors[5]).status == "inactive"
            history = db.execute(select(TierHistory).where(TierHistory.source == "monthly_review")).scalars().all()
            assert {h.tutor_id for h in history} == set(tutors)
            best = max(history, key=lambda h: h.performance_index or 0)
            assert best.tutor_id == tutors[4]  # rated 4.9 and teaching: the top of the ranked population

        # The next day's rollup reuses the review's cut-offs and writes that day's rows.
        next_day = MIDNIGHT + timedelta(days=1)
        daily = await temporal_client.execute_workflow(
            PopulationRollupWorkflow.run, RollupInput(as_of=next_day), id=f"rollup-{q}", task_queue=q)
        assert daily.review is None and daily.tutors == 6
        with session_scope(engine) as db:
            assert len(db.execute(select(TierCutoffs)).scalars().all()) == 1
            days = db.execute(select(ChurnPrediction.prediction_date).where(ChurnPrediction.tutor_id == tutors[0])).scalars().all()
            assert sorted(days) == [MIDNIGHT.date(), next_day.date()]

        trends = await temporal_client.execute_workflow(
            WeeklyTrendsWorkflow.run, TrendsInput(as_of=MIDNIGHT), id=f"trends-{q}", task_queue=q)
        assert trends.tutors == 6
        with session_scope(engine) as db:
            rows = {r.tutor_id: r.moving_averages for r in db.execute(select(WeeklyTrend)).scalars()}
        assert rows[tutors[0]]["sessions_per_day"]["current"] == pytest.approx(6 / 7, abs=1e-3)  # day 7 is off
        assert rows[tutors[5]]["sessions_per_day"] == {"current": 0.0, "previous": 0.0, "change": 0.0}
        assert rows[tutors[1]]["satisfaction_avg"]["current"] == pytest.approx(3.9, abs=0.01)


async def test_rollup_signals_tutors_whose_risk_level_moved(engine: Engine, settings: Settings,
                                                            temporal_env: WorkflowEnvironment, temporal_client,
                                                            activity_executor) -> None:  # noqa: ANN001
    tutors = _seed(engine, settings.temporal_task_queue)
    q = settings.temporal_task_queue
    async with build_worker(temporal_env.client, settings, activity_executor):
        await temporal_client.execute_workflow(PopulationRollupWorkflow.run, RollupInput(review=True, as_of=MIDNIGHT),
                                               id=f"review-{q}", task_queue=q)
        # Two weeks of silence from everyone: every active tutor's risk rises, and their workflows are woken.
        later = MIDNIGHT + timedelta(days=14)
        summary = await temporal_client.execute_workflow(
            PopulationRollupWorkflow.run, RollupInput(as_of=later), id=f"rollup-{q}", task_queue=q)
        assert summary.risk_changed and summary.tutors_signalled == len(summary.risk_changed)
        assert set(summary.risk_changed) <= set(tutors)
        # The signal activity has returned, so signal-with-start has created each lifecycle workflow on our queue.
        for moved in summary.risk_changed:
            desc = await temporal_client.get_workflow_handle(f"tutor-{moved}").describe()
            assert desc.task_queue == q


async def test_schedules_use_configured_crons_and_keep_a_pause(engine: Engine, settings: Settings,
                                                               temporal_env: WorkflowEnvironment, temporal_client) -> None:  # noqa: ANN001
    custom = settings.model_copy(update={"daily_rollup_cron": "5 0 * * *", "monthly_review_cron": "0 1 1 * *"})
    await ensure_evaluation_schedules(temporal_client, custom)
    ids = evaluation_schedule_ids(custom)
    try:
        specs: dict[str, ScheduleSpec] = {}
        for key, sid in ids.items():
            desc = await temporal_client.get_schedule_handle(sid).describe()
            specs[key] = desc.schedule.spec
        # The server stores cron strings as calendar specs: compare what fires, not the text.
        daily = specs["daily_rollup"].calendars[0]
        assert [r.start for r in daily.minute] == [5] and [r.start for r in daily.hour] == [0]
        monthly = specs["monthly_review"].calendars[0]
        assert [r.start for r in monthly.day_of_month] == [1] and [r.start for r in monthly.hour] == [1]
        weekly = specs["weekly_trends"].calendars[0]
        assert [r.start for r in weekly.day_of_week] == [1]

        handle = temporal_client.get_schedule_handle(ids["daily_rollup"])
        await handle.pause(note="maintenance")
        await ensure_evaluation_schedules(temporal_client, custom)  # a worker restart
        assert (await handle.describe()).schedule.state.paused
    finally:
        for sid in ids.values():
            await temporal_client.get_schedule_handle(sid).delete()
