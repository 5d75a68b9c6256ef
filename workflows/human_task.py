"""One workflow per human task (id = the intervention id): H1/H4/H5, a program's kickoff, check-ins and
review, an A4 escalation. It holds the task's state; people change it only through Updates whose validators
refuse illegal transitions before anything is written. The SLA timer escalates to the manager role."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.inputs import InterventionPlan, InterventionResult, TaskCommand, TaskView
    from workflows.task_state import ACTIVE, CLOSED, MANAGERS, OUTCOMES, CaseWorkflow, TaskActions


@workflow.defn
class HumanTaskWorkflow(CaseWorkflow):
    @workflow.init
    def __init__(self, plan: InterventionPlan) -> None:
        # Built from the start argument so validators work even before run() reaches its first await.
        self._actions = TaskActions(plan, initial="needs_approval" if plan.requires_approval else "pending")

    # --- Updates: validator (pure, may raise) + handler (changes state, then persists it) ---

    @workflow.update
    async def claim(self, cmd: TaskCommand) -> TaskView:
        return await self._actions.apply("claimed", cmd, status="in_progress", assigned_to=cmd.actor)

    @claim.validator
    def _claim_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_open()
        if self._view.status == "needs_approval":
            raise ValueError("waiting for manager approval; it cannot be claimed yet")
        if self._view.assigned_to == cmd.actor:
            raise ValueError(f"already claimed by {cmd.actor}")
        if self._view.assigned_to is not None:
            raise ValueError(f"already claimed by {self._view.assigned_to}; a manager can reassign it")
        self._actions.require_team(cmd)

    @workflow.update
    async def unclaim(self, cmd: TaskCommand) -> TaskView:
        return await self._actions.apply("unclaimed", cmd, status="pending", assigned_to=None)

    @unclaim.validator
    def _unclaim_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_open()
        if self._view.assigned_to is None:
            raise ValueError("nobody has claimed it")
        if cmd.actor != self._view.assigned_to and cmd.actor_role not in MANAGERS:
            raise ValueError(f"claimed by {self._view.assigned_to}; only they or a manager can release it")

    @workflow.update
    async def assign(self, cmd: TaskCommand) -> TaskView:
        return await self._actions.apply("assigned", cmd, status="in_progress", assigned_to=cmd.assignee)

    @assign.validator
    def _assign_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_open()
        if self._view.status == "needs_approval":
            raise ValueError("waiting for manager approval; approve it before assigning")
        if cmd.actor_role not in MANAGERS:
            raise ValueError(f"only {' or '.join(MANAGERS)} can assign tasks")
        if not cmd.assignee:
            raise ValueError("assignee is required")
        if cmd.assignee == self._view.assigned_to:
            raise ValueError(f"already assigned to {cmd.assignee}")

    @workflow.update
    async def approve(self, cmd: TaskCommand) -> TaskView:
        return await self._actions.apply("approved", cmd, status="pending", approved_by=cmd.actor)

    @approve.validator
    def _approve_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_open()
        if self._view.status != "needs_approval":
            raise ValueError("it does not need approval" if not self._actions.plan.requires_approval else
                             f"already approved by {self._view.approved_by}")
        allowed = {self._actions.plan.approver_role or "ops_manager", "admin"}
        if cmd.actor_role not in allowed:
            raise ValueError(f"approval needs the {' or '.join(sorted(allowed))} role, not {cmd.actor_role}")

    @workflow.update
    async def complete(self, cmd: TaskCommand) -> TaskView:
        return await self._actions.apply("completed", cmd, status="completed", outcome=cmd.outcome, notes=cmd.notes)

    @complete.validator
    def _complete_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_open()
        if self._view.status != "in_progress":
            raise ValueError("claim or assign it before completing it" if self._view.status == "pending"
                             else "waiting for manager approval")
        if cmd.actor != self._view.assigned_to and cmd.actor_role not in MANAGERS:
            raise ValueError(f"assigned to {self._view.assigned_to}; only they or a manager can complete it")
        if cmd.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")

    @workflow.update
    async def cancel(self, cmd: TaskCommand) -> TaskView:
        return await self._actions.apply("cancelled", cmd, status="cancelled", notes=cmd.reason)

    @cancel.validator
    def _cancel_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_cancel(cmd, "a task")

    # --- The task's life: record, remind, escalate at the SLA, wait for a person to close it ---

    @workflow.run
    async def run(self, plan: InterventionPlan) -> InterventionResult:
        await self._actions.record()
        self._actions.set_due(workflow.now() + timedelta(seconds=plan.sla_seconds) if plan.sla_seconds else None)
        try:
            await self._watch_deadline(plan)
            await workflow.wait_condition(lambda: self._view.status in CLOSED)
        except asyncio.CancelledError:
            # The parent program was cancelled: close this task too, then end as cancelled.
            if self._view.status in ACTIVE:
                await asyncio.shield(asyncio.ensure_future(self._actions.close_for_parent()))
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return InterventionResult(plan.intervention_id, self._view.status, escalated=self._view.escalated,
                                  outcome=self._view.outcome, notes=self._view.notes)

    async def _watch_deadline(self, plan: InterventionPlan) -> None:
        due = self._view.due_at
        if due is None:
            return
        closed = lambda: self._view.status in CLOSED  # noqa: E731
        if plan.reminder_before_seconds and workflow.patched("reminder-before-due"):
            remind_at = due - timedelta(seconds=plan.reminder_before_seconds)
            if not await self._sleep_until(remind_at, closed):
                await self._actions.notify("reminder", role=plan.owner_role, to=self._view.assigned_to)
                await self._actions.apply("reminded", None)
        if not await self._sleep_until(due, closed):
            await self._actions.notify("escalation", role=plan.escalate_to_role or "ops_manager")
            await self._actions.apply("escalated", None, escalated=True)

    async def _sleep_until(self, when, done) -> bool:  # noqa: ANN001
        """True if ``done`` became true before ``when``."""
        left = (when - workflow.now()).total_seconds()
        if left <= 0:
            return done()
        try:
            await workflow.wait_condition(done, timeout=left)
            return True
        except asyncio.TimeoutError:
            return done()
