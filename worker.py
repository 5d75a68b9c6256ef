"""The composition root: wires the database, settings and Temporal client into activities and runs the worker.

Scale out by starting more of these on the same task queue (one per machine or core).
"""
from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.evaluation import EvaluationActivities, SweepActivities
from activities.feedback_reminder import FeedbackReminderActivities
from activities.interventions import InterventionActivities
from activities.model import ModelActivities
from activities.model_scoring import ModelScoringActivities
from activities.notifications import NotificationActivities
from activities.retention import RetentionActivities
from activities.rollup import RollupActivities
from activities.synth import SynthActivities
from core.config import Settings, get_settings
from core.db import get_engine
from core.temporal import connect
from rules.interventions import active_intervention_rules
from rules.scoring import active_scoring_rules
from synth.label_feed import churn_labels
from workflows.automated import AutomatedInterventionWorkflow
from workflows.feedback_reminder import FeedbackReminderWorkflow
from workflows.human_task import HumanTaskWorkflow
from workflows.program import ProgramWorkflow
from workflows.periodic import PopulationRollupWorkflow, SweepWorkflow, SynthTickWorkflow, WeeklyTrendsWorkflow
from workflows.model import ModelRetrainWorkflow
from workflows.retention import RetentionWorkflow
from workflows.retention_schedule import ensure_retention_schedule
from workflows.schedules import ensure_evaluation_schedules, ensure_model_retrain_schedule, ensure_sweep_schedule
from workflows.tutor_lifecycle import TutorLifecycleWorkflow

WORKFLOWS = [TutorLifecycleWorkflow, AutomatedInterventionWorkflow, HumanTaskWorkflow, ProgramWorkflow, SweepWorkflow,
             SynthTickWorkflow, PopulationRollupWorkflow, WeeklyTrendsWorkflow, ModelRetrainWorkflow, RetentionWorkflow,
             FeedbackReminderWorkflow]


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor, *, task_queue: str | None = None) -> Worker:
    engine = get_engine(settings.database_url)
    evaluation = EvaluationActivities(engine=engine, settings=settings)
    interventions = InterventionActivities(engine=engine, settings=settings)
    notifications = NotificationActivities(engine=engine, settings=settings)
    sweep = SweepActivities(engine=engine, settings=settings, client=client)
    synth = SynthActivities(engine=engine, settings=settings, client=client)
    rollup = RollupActivities(engine=engine, settings=settings, client=client)
    model_scoring = ModelScoringActivities(engine=engine, settings=settings)
    retention = RetentionActivities(engine=engine, settings=settings)
    feedback_reminder = FeedbackReminderActivities(engine=engine, settings=settings)
    # The one place the worker takes churn labels from a synthetic world's departure records (synth.label_feed:
    # None on real data, where the inactivity definition labels).
    model = ModelActivities(engine=engine, settings=settings, truth_for=churn_labels)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[
            evaluation.evaluate_tutor, evaluation.decide_interventions, sweep.resignal_pending, synth.run_synth_tick,
            interventions.record_intervention, interventions.save_task, interventions.send_messages,
            interventions.check_follow_up, interventions.withdraw_messages, notifications.deliver_email,
            rollup.evaluate_population, rollup.store_weekly_trends, rollup.signal_tutors,
            model_scoring.score_population, model.train_candidate, model.decide_promotion, retention.purge_expired,
            feedback_reminder.queue_feedback_reminder,
        ],
        # SQL and durable-rules are synchronous: they run on this pool, off the event loop.
        activity_executor=executor,
        max_concurrent_activities=8,
    )


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    # Fail fast on a broken rules file: name the file, line and rule now rather than retrying activities forever.
    active_scoring_rules(settings.rules_dir)
    active_intervention_rules(settings.rules_dir)
    client = await connect(settings)
    await ensure_sweep_schedule(client, settings)
    await ensure_evaluation_schedules(client, settings)
    await ensure_model_retrain_schedule(client, settings)
    await ensure_retention_schedule(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Graceful: stop polling, let running activities finish, then exit (a kill -9 is recovered by timeouts).
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(client, settings, executor):
            logging.getLogger(__name__).info("worker polling %s on %s", settings.temporal_task_queue, settings.temporal_address)
            await stop.wait()
        logging.getLogger(__name__).info("worker stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker())
