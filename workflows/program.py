"""One workflow per program (H2 peer mentoring, H3 PIP; id = the intervention id): a kickoff task (with the
manager's approval where the rule asks), then check-in tasks on a fixed cadence, each with its own due date
and escalation, until the program ends (H3 can be extended up to its maximum), then an outcome review whose
outcome closes the program. Every task is a HumanTaskWorkflow child with an id derived from the program's."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.human_task import HumanTaskWorkflow
    from workflows.inputs import InterventionPlan, InterventionResult, TaskCommand, TaskView
    from workflows.task_state import MANAGERS, SelfClosingCase, TaskActions


@workflow.defn
class ProgramWorkflow(SelfClosingCase):
    cancel_what = "a program"

    @workflow.init
    def __init__(self, plan: InterventionPlan) -> None:
        self._actions = TaskActions(plan, initial="pending")
        self._extra_seconds = 0.0
        self._tasks: list[workflow.ChildWorkflowHandle] = []
        self._checkins = 0
        self._started = None  # when the kickoff closed and the program clock started

    @workflow.query
    def checkins(self) -> int:
        return self._checkins

    @workflow.update
    async def extend(self, cmd: TaskCommand) -> TaskView:
        self._extra_seconds += (cmd.extend_days or 0) * self._actions.plan.day_seconds
        return await self._actions.apply("extended", cmd, due_at=self._ends_at())

    @extend.validator
    def _extend_ok(self, cmd: TaskCommand) -> None:
        plan = self._actions.plan
        self._actions.require_open()
        if cmd.actor_role not in MANAGERS and cmd.actor_role != plan.owner_role:
            raise ValueError(f"only {plan.owner_role} or a manager can extend it")
        if not cmd.extend_days or cmd.extend_days <= 0:
            raise ValueError("extend_days must be a positive number of days")
        if self._started is None:
            raise ValueError("it has not started yet; extend it after the kickoff")
        limit = plan.max_duration_seconds or plan.duration_seconds or 0
        wanted = (plan.duration_seconds or 0) + self._extra_seconds + cmd.extend_days * plan.day_seconds
        if wanted > limit + 1e-6:
            raise ValueError(f"the rules allow at most {limit / plan.day_seconds:g} days in total")

    def _ends_at(self):  # noqa: ANN202
        plan = self._actions.plan
        return self._started + timedelta(seconds=(plan.duration_seconds or 0) + self._extra_seconds)

    @workflow.run
    async def run(self, plan: InterventionPlan) -> InterventionResult:
        await self._actions.record()
        kickoff = await self._run_task("kickoff", f"Kickoff: {plan.title}", plan.sla_seconds,
                                       requires_approval=plan.requires_approval, wait=True)
        if kickoff is None or kickoff.status == "cancelled":
            return await self._close("cancelled", None, "the kickoff task was cancelled")
        self._started = workflow.now()
        await self._actions.apply("started", None, status="in_progress", due_at=self._ends_at())
        if plan.checkin_every_seconds:
            n = 1
            while not self._cancelled():
                next_at = self._started + timedelta(seconds=n * plan.checkin_every_seconds)
                if next_at >= self._ends_at() or await self._sleep_until(next_at):
                    break
                self._checkins = n
                await self._run_task(f"checkin-{n}", f"Check-in {n}: {plan.title}", plan.checkin_sla_seconds, wait=False)
                n += 1
        while not self._cancelled() and workflow.now() < self._ends_at():  # extensions move the end
            if await self._sleep_until(self._ends_at()):
                break
        if self._cancelled():
            return await self._close("cancelled", None, self._actions.cancel_reason)
        review = await self._run_task("review", f"Outcome review: {plan.title}", plan.checkin_sla_seconds or plan.sla_seconds,
                                      wait=True)
        if review is None or review.status == "cancelled":
            return await self._close("cancelled", None, self._actions.cancel_reason or "the review was cancelled")
        return await self._close("completed", review.outcome, review.notes)

    def _cancelled(self) -> bool:
        return self._actions.cancel_reason is not None

    async def _sleep_until(self, when) -> bool:  # noqa: ANN001
        """True if cancelled before ``when``."""
        left = (when - workflow.now()).total_seconds()
        if left > 0:
            try:
                await workflow.wait_condition(self._cancelled, timeout=left)
            except asyncio.TimeoutError:
                pass
        return self._cancelled()

    async def _run_task(self, suffix: str, title: str, sla: float | None, *, requires_approval: bool = False,
                        wait: bool) -> InterventionResult | None:
        plan = self._actions.plan
        step = suffix.split("-")[0]
        child = dataclasses.replace(
            plan, intervention_id=f"{plan.intervention_id}-{suffix}", kind="human", title=title, step=step,
            parent_id=plan.intervention_id, recommended_at=workflow.now(), sla_seconds=sla, requires_approval=requires_approval,
            approver_role=plan.approver_role if requires_approval else None,
            reminder_before_seconds=plan.reminder_before_seconds if step == "kickoff" else None,
            duration_seconds=None, max_duration_seconds=None, checkin_every_seconds=None, escalation_plan=None)
        try:
            # REQUEST_CANCEL: a task still open when the program closes is closed as cancelled, not left behind.
            handle = await workflow.start_child_workflow(HumanTaskWorkflow.run, child, id=child.intervention_id,
                                                         parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL)
        except WorkflowAlreadyStartedError:
            return None
        self._tasks.append(handle)
        if not wait:
            return None
        # Cancelling the program cancels the task it waits on (and every open check-in) via _close.
        done = asyncio.ensure_future(handle)
        await workflow.wait_condition(lambda: done.done() or self._cancelled())
        if not done.done():
            return None
        try:
            return done.result()
        except Exception:  # noqa: BLE001 - a cancelled child ends in an error; the program reads it as cancelled
            return None

    async def _close(self, status: str, outcome: str | None, notes: str | None) -> InterventionResult:
        for task in self._tasks:
            if not task.done():
                task.cancel()  # open check-ins close as cancelled with the program
        actor = self._actions.cancel_actor
        await self._actions.apply(status, TaskCommand(actor=actor, actor_role="") if actor else None,
                                  status=status, outcome=outcome, notes=notes)
        await workflow.wait_condition(workflow.all_handlers_finished)
        plan = self._actions.plan
        return InterventionResult(plan.intervention_id, status, escalated=False, outcome=outcome)
