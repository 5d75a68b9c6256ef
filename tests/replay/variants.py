"""Test-only versions of HumanTaskWorkflow, registered under its real name, to prove the patch gate works.

* ``PrePatchHumanTaskWorkflow``: the workflow as it was *before* the reminder existed (no reminder branch at
  all). ``record.py`` (via ``scenarios_skipping.py``) runs it once to save
  ``histories/human_task_pre_reminder_patch.json``: the history a task that was already running when the reminder
  shipped has on the server.
* ``UngatedHumanTaskWorkflow``: the reminder added the wrong way, without ``workflow.patched``. Replaying the
  pre-patch history against it must fail with a nondeterminism error (it schedules a reminder timer and
  activities that the old history does not have), which is what the gate in workflows/human_task.py prevents.

Workflow code: only workflow-safe imports here (this module is re-imported inside the workflow sandbox).
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.inputs import InterventionPlan, InterventionResult
    from workflows.task_state import CLOSED

from workflows.human_task import HumanTaskWorkflow

REMINDER_PATCH = "reminder-before-due"


@workflow.defn(name="HumanTaskWorkflow")
class PrePatchHumanTaskWorkflow(HumanTaskWorkflow):
    """Before the reminder: wait for the SLA, escalate, nothing else."""

    @workflow.run
    async def run(self, plan: InterventionPlan) -> InterventionResult:
        return await super().run(plan)

    async def _watch_deadline(self, plan: InterventionPlan) -> None:
        due = self._view.due_at
        if due is None:
            return
        closed = lambda: self._view.status in CLOSED  # noqa: E731
        if not await self._sleep_until(due, closed):
            await self._actions.notify("escalation", role=plan.escalate_to_role or "ops_manager")
            await self._actions.apply("escalated", None, escalated=True)


@workflow.defn(name="HumanTaskWorkflow")
class UngatedHumanTaskWorkflow(HumanTaskWorkflow):
    """The reminder shipped without ``workflow.patched``: breaks every task started before it."""

    @workflow.run
    async def run(self, plan: InterventionPlan) -> InterventionResult:
        return await super().run(plan)

    async def _watch_deadline(self, plan: InterventionPlan) -> None:
        due = self._view.due_at
        if due is None:
            return
        closed = lambda: self._view.status in CLOSED  # noqa: E731
        if plan.reminder_before_seconds:
            remind_at = due - timedelta(seconds=plan.reminder_before_seconds)
            if not await self._sleep_until(remind_at, closed):
                await self._actions.notify("reminder", role=plan.owner_role, to=self._view.assigned_to)
                await self._actions.apply("reminded", None)
        if not await self._sleep_until(due, closed):
            await self._actions.notify("escalation", role=plan.escalate_to_role or "ops_manager")
            await self._actions.apply("escalated", None, escalated=True)
