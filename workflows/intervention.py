"""One workflow per intervention (id = intervention business key). Automated: message the tutor.
Human: a queue task raced against its SLA timer; escalates when the SLA passes, closes on completion."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.interventions import InterventionActivities
    from workflows.inputs import CompleteTaskSignal, InterventionPlan, InterventionResult, InterventionStep
    from workflows.policies import DB_RETRY, DB_TIMEOUT


@workflow.defn
class InterventionWorkflow:
    def __init__(self) -> None:
        self._completion: CompleteTaskSignal | None = None
        self._status = "starting"

    @workflow.signal
    def complete(self, signal: CompleteTaskSignal) -> None:
        if self._completion is None:  # the first completion wins; repeats are no-ops
            self._completion = signal

    @workflow.query
    def status(self) -> str:
        return self._status

    async def _step(self, method, plan: InterventionPlan, step: str, completion: CompleteTaskSignal | None = None):  # noqa: ANN001, ANN202
        return await workflow.execute_activity_method(
            method, InterventionStep(plan=plan, step=step, at=workflow.now(), completion=completion),
            start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY,
        )

    @workflow.run
    async def run(self, plan: InterventionPlan) -> InterventionResult:
        await self._step(InterventionActivities.record_intervention, plan, "record")
        if plan.kind == "automated":
            await self._step(InterventionActivities.send_tutor_message, plan, "message")
            self._status = "completed"
            return InterventionResult(plan.intervention_id, "completed", escalated=False, outcome=None)

        self._status = "waiting"
        escalated = False
        try:
            await workflow.wait_condition(lambda: self._completion is not None,
                                          timeout=timedelta(seconds=plan.sla_seconds or 0) or None)
        except asyncio.TimeoutError:
            escalated = True
            self._status = "escalated"
            await self._step(InterventionActivities.escalate_intervention, plan, "escalate")
            await workflow.wait_condition(lambda: self._completion is not None)
        assert self._completion is not None
        await self._step(InterventionActivities.complete_intervention, plan, "complete", self._completion)
        self._status = "completed"
        return InterventionResult(plan.intervention_id, "completed", escalated=escalated, outcome=self._completion.outcome)
