"""The daily churn-model retraining (a Temporal Schedule): train and register a candidate on the recent data,
champion/challenger against the live model, then score the day's prediction rows with whichever model is live.

Thin and deterministic: the work is in the activities; every bound comes from the input the schedule filled
from the settings. The scoring step is the model-scoring activity, called by name.
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.model import ModelActivities
    from activities.rollup import RollupActivities
    from workflows.inputs import (
        DecidePromotionInput,
        ModelRetrainInput,
        ModelRetrainResult,
        PromotionResult,
        ScorePopulationInput,
        ScorePopulationResult,
        SignalTutorsInput,
        TrainCandidateInput,
        TrainCandidateResult,
    )
    from workflows.policies import DB_RETRY

# A training that failed three times is not retried for the rest of the day: tomorrow's run starts afresh, and a
# deterministic failure does not burn an hour of CPU every few minutes. Too little data is not a failure (the
# activity reports it and returns).
MODEL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=30), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=10), maximum_attempts=3)
SCORE_POPULATION = "score_population"  # activities/model_scoring.py ModelScoringActivities.score_population


@workflow.defn
class ModelRetrainWorkflow:
    @workflow.run
    async def run(self, inp: ModelRetrainInput) -> ModelRetrainResult:
        day = inp.day or workflow.now().date().isoformat()
        bound = timedelta(seconds=inp.train_timeout_seconds)
        trained: TrainCandidateResult = await workflow.execute_activity_method(
            ModelActivities.train_candidate, TrainCandidateInput(day=day, days=inp.days, end=inp.end),
            start_to_close_timeout=bound, heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
            retry_policy=MODEL_RETRY)
        promotion: PromotionResult | None = None
        if trained.version is not None:
            promotion = await workflow.execute_activity_method(
                ModelActivities.decide_promotion, DecidePromotionInput(version=trained.version),
                start_to_close_timeout=bound, retry_policy=MODEL_RETRY)
        scoring: ScorePopulationResult = await workflow.execute_activity(
            SCORE_POPULATION, ScorePopulationInput(day=day), result_type=ScorePopulationResult,
            start_to_close_timeout=timedelta(seconds=inp.score_timeout_seconds), retry_policy=DB_RETRY)
        signalled = 0
        if scoring.risk_changed:  # the model drives interventions and moved someone's level: let them re-decide
            signalled = await workflow.execute_activity_method(
                RollupActivities.signal_tutors, SignalTutorsInput(tutor_ids=scoring.risk_changed),
                start_to_close_timeout=timedelta(seconds=inp.score_timeout_seconds), retry_policy=DB_RETRY)
        return ModelRetrainResult(day=day, trained=trained, promotion=promotion, scoring=scoring,
                                  tutors_signalled=signalled)
