"""One workflow per automated intervention (A1-A4; id = the intervention id): wait (A3's 2 h), message the
tutor through the outbox, track the response, run the follow-up (A2 training check after 7 days, A4 manager
review if the pattern continues for 14 days). A later evaluation that no longer asks for it cancels it."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.interventions import InterventionActivities
    from workflows.human_task import HumanTaskWorkflow
    from workflows.inputs import InterventionPlan, InterventionResult, InterventionStep, TaskCommand
    from workflows.policies import DB_RETRY, DB_TIMEOUT
    from workflows.task_state import CLOSED, SelfClosingCase, TaskActions

# SMTP: transient failures (server down, 4xx) retry with backoff for a day; permanent ones fail at once.
EMAIL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=10))
EMAIL_SCHEDULE_TO_CLOSE = timedelta(days=1)


@workflow.defn
class AutomatedInterventionWorkflow(SelfClosingCase):
    cancel_what = "an automated intervention"

    @workflow.init
    def __init__(self, plan: InterventionPlan) -> None:
        self._actions = TaskActions(plan, initial="in_progress")
        self._responded = False

    @workflow.signal
    def rules_unmatched(self, reason: str) -> None:
        """From the tutor's lifecycle: the latest evaluation no longer asks for this. A no-op once closed."""
        if self._view.status not in CLOSED and self._actions.cancel_reason is None:
            self._actions.cancel_reason = reason

    @workflow.signal
    def tutor_responded(self) -> None:
        self._responded = True

    def _cancelled(self) -> bool:
        return self._actions.cancel_reason is not None

    async def _wait(self, seconds: float, also=lambda: False) -> bool:  # noqa: ANN001
        """Sleeps ``seconds`` unless cancelled (or ``also``) first; True if it was interrupted."""
        if seconds <= 0:
            return self._cancelled()
        try:
            await workflow.wait_condition(lambda: self._cancelled() or also(), timeout=seconds)
            return True
        except asyncio.TimeoutError:
            return False

    @workflow.run
    async def run(self, plan: InterventionPlan) -> InterventionResult:
        await self._actions.record()
        if await self._wait(plan.send_delay_seconds):
            return await self._close_cancelled(plan)
        await self._send(plan)
        await self._actions.apply("sent", None)
        waited = 0.0
        if plan.follow_up and plan.follow_up_seconds:
            if await self._wait(plan.follow_up_seconds):
                return await self._close_cancelled(plan)
            waited = plan.follow_up_seconds
            await self._follow_up(plan)
        if await self._wait(plan.track_seconds - waited, also=lambda: self._responded) and self._cancelled():
            return await self._close_cancelled(plan)
        await self._actions.apply("completed", None, status="completed")
        return InterventionResult(plan.intervention_id, "completed", escalated=self._view.escalated, outcome=None)

    async def _send(self, plan: InterventionPlan) -> None:
        pending_email = await workflow.execute_activity_method(
            InterventionActivities.send_messages, InterventionStep(plan=plan, step="message", at=workflow.now()),
            start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)
        if not workflow.patched("cancel-stops-delivery"):
            for message_id in pending_email:  # runs started before the patch: deliver, whatever happens meanwhile
                await self._deliver(message_id)
            return
        # A cancellation (the rules no longer ask for it, or a manager) stops an email still being retried,
        # e.g. while the mail server is down; the in-app message already stands.
        deliveries = [asyncio.ensure_future(self._deliver(m)) for m in pending_email]
        await workflow.wait_condition(lambda: all(d.done() for d in deliveries) or self._cancelled())
        undelivered = [d for d in deliveries if not d.done()]
        for d in undelivered:
            d.cancel()
        if undelivered:
            await workflow.execute_activity_method(
                InterventionActivities.withdraw_messages, InterventionStep(plan=plan, step="message", at=workflow.now()),
                start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)

    async def _deliver(self, message_id: str) -> None:
        try:
            await workflow.execute_activity("deliver_email", message_id, start_to_close_timeout=timedelta(seconds=60),
                                            schedule_to_close_timeout=EMAIL_SCHEDULE_TO_CLOSE, retry_policy=EMAIL_RETRY)
        except ActivityError as err:
            # Permanent (bad address) or out of retries: the row says failed; the in-app message stands.
            workflow.logger.warning("email %s not delivered: %s", message_id, err.cause or err)

    async def _follow_up(self, plan: InterventionPlan) -> None:
        result = await workflow.execute_activity_method(
            InterventionActivities.check_follow_up, InterventionStep(plan=plan, step="follow_up", at=workflow.now()),
            start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)
        if plan.follow_up == "escalate_if" and result.done and plan.escalation_plan is not None:
            review = plan.escalation_plan
            try:
                await workflow.start_child_workflow(
                    HumanTaskWorkflow.run, review, id=review.intervention_id,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            except WorkflowAlreadyStartedError:
                pass  # the review exists already (e.g. this workflow was reset): one review per case
            await self._actions.apply("escalated", None, escalated=True)

    async def _close_cancelled(self, plan: InterventionPlan) -> InterventionResult:
        actor = self._actions.cancel_actor
        await self._actions.apply("cancelled", TaskCommand(actor=actor, actor_role="") if actor else None,
                                  status="cancelled", notes=self._actions.cancel_reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return InterventionResult(plan.intervention_id, "cancelled", escalated=self._view.escalated, outcome=None)
