"""Workflows run by Temporal Schedules: the pending-session sweep, the live synthetic feed tick, and the
periodic evaluation (daily rollup, monthly tier review, weekly trends)."""
from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.evaluation import SweepActivities
    from activities.rollup import RollupActivities
    from activities.synth import SynthActivities
    from workflows.inputs import (
        PopulationInput,
        RollupInput,
        RollupSummary,
        SignalTutorsInput,
        SweepInput,
        SweepResult,
        SynthTickInput,
        SynthTickResult,
        TrendsInput,
        TrendsSummary,
    )
    from workflows.policies import DB_RETRY


@workflow.defn
class SweepWorkflow:
    """Re-signals tutors whose sessions are still unevaluated: a lost signal never loses an evaluation."""

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        return await workflow.execute_activity_method(
            SweepActivities.resignal_pending, inp, start_to_close_timeout=timedelta(minutes=5), retry_policy=DB_RETRY)


@workflow.defn
class SynthTickWorkflow:
    @workflow.run
    async def run(self, inp: SynthTickInput) -> SynthTickResult:
        return await workflow.execute_activity_method(
            SynthActivities.run_synth_tick, inp, start_to_close_timeout=timedelta(minutes=5), retry_policy=DB_RETRY)


def _midnight(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


# A population run reads every tutor's 90 days: minutes, not seconds, is the honest bound on a big database.
POPULATION_TIMEOUT = timedelta(minutes=15)


@workflow.defn
class PopulationRollupWorkflow:
    """Daily rollup at midnight UTC (and, with review=True, the monthly tier review): every tutor re-evaluated
    as of that midnight; tutors whose risk level moved are signalled so their lifecycle re-decides interventions."""

    @workflow.run
    async def run(self, inp: RollupInput) -> RollupSummary:
        as_of = inp.as_of or _midnight(workflow.now())
        summary = await workflow.execute_activity_method(
            RollupActivities.evaluate_population, PopulationInput(as_of=as_of, review=inp.review),
            start_to_close_timeout=POPULATION_TIMEOUT, retry_policy=DB_RETRY)
        if summary.risk_changed:
            summary.tutors_signalled = await workflow.execute_activity_method(
                RollupActivities.signal_tutors, SignalTutorsInput(tutor_ids=summary.risk_changed),
                start_to_close_timeout=timedelta(minutes=5), retry_policy=DB_RETRY)
        return summary


@workflow.defn
class WeeklyTrendsWorkflow:
    @workflow.run
    async def run(self, inp: TrendsInput) -> TrendsSummary:
        return await workflow.execute_activity_method(
            RollupActivities.store_weekly_trends, TrendsInput(as_of=inp.as_of or _midnight(workflow.now())),
            start_to_close_timeout=POPULATION_TIMEOUT, retry_policy=DB_RETRY)
