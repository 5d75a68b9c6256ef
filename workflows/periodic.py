"""Workflows run by Temporal Schedules: the pending-session sweep and the live synthetic feed tick."""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.evaluation import SweepActivities
    from activities.synth import SynthActivities
    from workflows.inputs import SweepInput, SweepResult, SynthTickInput, SynthTickResult
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
