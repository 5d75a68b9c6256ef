"""A case's state inside its workflow and how a change is persisted: bump the revision, then one activity
writes the row and an event (revision-guarded, so retries and out-of-order writes are harmless).

Workflow code (deterministic): the state lives here, the database only mirrors it."""
from __future__ import annotations

import dataclasses
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.interventions import InterventionActivities
    from workflows.inputs import InterventionPlan, InterventionStep, TaskCommand, TaskSnapshot, TaskView
    from workflows.policies import DB_RETRY, DB_TIMEOUT

ACTIVE = ("needs_approval", "pending", "in_progress")
CLOSED = ("completed", "cancelled")
MANAGERS = ("ops_manager", "admin")
OUTCOMES = ("improved", "no_change", "declined", "churned")


class TaskActions:
    def __init__(self, plan: InterventionPlan, *, initial: str) -> None:
        self.plan = plan
        self.view = TaskView(intervention_id=plan.intervention_id, status=initial)
        self.cancel_reason: str | None = None  # automated cases: set by the lifecycle's signal or a manager
        self.cancel_actor: str | None = None
        self.saved_revision = 0  # the last revision the save activity wrote

    def closed_and_saved(self) -> bool:
        """For Updates that ask the run loop to close the case: return only once the row says so too."""
        return self.view.status in CLOSED and self.saved_revision >= self.view.revision

    def require_open(self) -> None:
        if self.view.status in CLOSED:
            raise ValueError(f"it is already {self.view.status}")

    def require_cancel(self, cmd: TaskCommand, what: str) -> None:
        self.require_open()
        if cmd.actor_role not in MANAGERS:
            raise ValueError(f"only {' or '.join(MANAGERS)} can cancel {what}")
        if not cmd.reason:
            raise ValueError("a reason is required to cancel")

    def require_team(self, cmd: TaskCommand) -> None:
        team = {self.plan.owner_role, self.plan.escalate_to_role if self.view.escalated else None, *MANAGERS}
        if cmd.actor_role not in team:
            raise ValueError(f"owned by {self.plan.owner_role}; a {cmd.actor_role} cannot take it")

    def set_due(self, due: datetime | None) -> None:
        self.view = dataclasses.replace(self.view, due_at=due)

    async def record(self) -> None:
        await workflow.execute_activity_method(
            InterventionActivities.record_intervention,
            InterventionStep(plan=self.plan, step="record", at=workflow.now()),
            start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)

    async def apply(self, event: str, cmd: TaskCommand | None, **changes) -> TaskView:  # noqa: ANN003
        """Changes the state synchronously (so a concurrent Update's validator already sees it), then saves."""
        self.view = dataclasses.replace(self.view, revision=self.view.revision + 1, **changes)
        snapshot = TaskSnapshot(plan=self.plan, view=self.view, event=event, actor=cmd.actor if cmd else None,
                                at=workflow.now())
        await workflow.execute_activity_method(InterventionActivities.save_task, snapshot,
                                               start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)
        self.saved_revision = max(self.saved_revision, snapshot.view.revision)
        return self.view

    async def notify(self, step: str, *, role: str | None, to: str | None = None) -> None:
        """An in-app notice to staff (reminder, escalation): one outbox row per case and step."""
        await workflow.execute_activity_method(
            InterventionActivities.send_messages,
            InterventionStep(plan=self.plan, step=step, at=workflow.now(), recipient_role=role or "ops_manager",
                             recipient=to),
            start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)

    async def close_for_parent(self) -> None:
        await self.apply("cancelled", None, status="cancelled", notes="closed with its program")


class CaseWorkflow:
    """What every case workflow shares: its state (``self._actions``, built in its ``@workflow.init``) and the
    ``view`` query. Temporal registers handlers inherited from a base class."""

    _actions: TaskActions

    @property
    def _view(self) -> TaskView:
        return self._actions.view

    @workflow.query
    def view(self) -> TaskView:
        return self._view


class SelfClosingCase(CaseWorkflow):
    """Automated cases and programs: their run loop closes them, so ``cancel`` asks it to and returns once
    the row says cancelled (a caller re-reading the row sees the cancellation)."""

    cancel_what = "a case"  # how the refusal names it

    @workflow.update
    async def cancel(self, cmd: TaskCommand) -> TaskView:
        self._actions.cancel_reason, self._actions.cancel_actor = cmd.reason, cmd.actor
        await workflow.wait_condition(self._actions.closed_and_saved)
        return self._view

    @cancel.validator
    def _cancel_ok(self, cmd: TaskCommand) -> None:
        self._actions.require_cancel(cmd, self.cancel_what)
