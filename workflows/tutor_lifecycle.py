"""One long-lived workflow per tutor (id tutor-<tutor_id>): coalesces session signals into evaluations,
runs the rules and starts intervention workflows. Deterministic: all I/O is in activities."""
from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.evaluation import EvaluationActivities
    from workflows.inputs import (
        DecideInput,
        EvaluateTutorInput,
        SessionsIngested,
        TutorLifecycleInput,
        TutorState,
    )
    from workflows.automated import AutomatedInterventionWorkflow
    from workflows.human_task import HumanTaskWorkflow
    from workflows.program import ProgramWorkflow
    from workflows.policies import DB_RETRY, DB_TIMEOUT


@workflow.defn
class TutorLifecycleWorkflow:
    def __init__(self) -> None:
        self._tutor_id = ""
        self._pending: list[str] = []
        self._dirty = False
        self._evaluations = 0
        self._last_evaluated_at: datetime | None = None
        self._churn_score: float | None = None
        self._risk_level: str | None = None
        self._started: list[str] = []
        self._cancelled: list[str] = []

    @workflow.signal
    def sessions_ingested(self, signal: SessionsIngested) -> None:
        self._pending.extend(signal.session_ids)
        self._dirty = True

    @workflow.query
    def state(self) -> TutorState:
        return TutorState(
            tutor_id=self._tutor_id, evaluations=self._evaluations, pending_sessions=len(self._pending),
            last_evaluated_at=self._last_evaluated_at, churn_score=self._churn_score, risk_level=self._risk_level,
            started_interventions=list(self._started[-20:]), cancelled_interventions=list(self._cancelled[-20:]),
        )

    @workflow.run
    async def run(self, inp: TutorLifecycleInput) -> None:
        self._tutor_id = inp.tutor_id
        self._evaluations = inp.evaluations
        self._pending.extend(inp.pending_session_ids)
        self._dirty = self._dirty or inp.evaluate_now or bool(inp.pending_session_ids)
        runs_here = 0
        while True:
            await workflow.wait_condition(lambda: self._dirty)
            # Everything signalled until now is covered by this evaluation; later signals trigger the next one.
            self._dirty = False
            self._pending = []
            await self._evaluate()
            runs_here += 1
            if runs_here >= inp.evaluations_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(TutorLifecycleInput(
                    tutor_id=self._tutor_id, evaluations=self._evaluations, pending_session_ids=self._pending,
                    evaluate_now=self._dirty, evaluations_per_run=inp.evaluations_per_run,
                ))

    async def _evaluate(self) -> None:
        as_of = workflow.now()
        try:
            result = await workflow.execute_activity_method(
                EvaluationActivities.evaluate_tutor, EvaluateTutorInput(tutor_id=self._tutor_id, as_of=as_of),
                start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY,
            )
            decision = await workflow.execute_activity_method(
                EvaluationActivities.decide_interventions,
                DecideInput(tutor_id=self._tutor_id, as_of=as_of, facts=result.facts),
                start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY,
            )
        except ActivityError as err:
            # Only non-retryable failures get here (e.g. the tutor does not exist): log, keep serving signals.
            workflow.logger.error("evaluation of %s failed: %s", self._tutor_id, err.cause or err)
            return
        self._evaluations += 1
        self._last_evaluated_at = as_of
        self._churn_score, self._risk_level = result.churn_score, result.risk_level
        for plan in decision.plans:
            run = {"automated": AutomatedInterventionWorkflow.run, "program": ProgramWorkflow.run}.get(
                plan.kind, HumanTaskWorkflow.run)
            try:
                # The id is the business key and a finished id is never reused: no duplicate intervention,
                # however often this evaluation is replayed or retried.
                await workflow.start_child_workflow(
                    run, plan, id=plan.intervention_id,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
                self._started.append(plan.intervention_id)
            except WorkflowAlreadyStartedError:
                pass
        for cancellation in decision.cancel:
            try:
                await workflow.get_external_workflow_handle(cancellation.intervention_id).signal(
                    AutomatedInterventionWorkflow.rules_unmatched, cancellation.reason)
                self._cancelled.append(cancellation.intervention_id)
            except FailureError:
                pass  # it closed in the meantime: nothing left to cancel
