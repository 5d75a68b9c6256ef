"""Schemas of the intervention queue, task actions, tutor history and effectiveness. They name every field a
client sees, so the OpenAPI document is the contract."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.interventions.models import Outcome
from domain.interventions.queries import DUE_FILTERS, KIND_FILTERS, SCOPES, STATUS_FILTERS

Scope = Literal[SCOPES]  # type: ignore[valid-type]
DueFilter = Literal[DUE_FILTERS]  # type: ignore[valid-type]
StatusFilter = Literal[STATUS_FILTERS]  # type: ignore[valid-type]
KindFilter = Literal[KIND_FILTERS]  # type: ignore[valid-type]


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    revision: int
    event: str = Field(description="recorded, approved, claimed, unclaimed, assigned, completed, cancelled, escalated …")
    actor: str | None
    detail: dict[str, Any]
    at: datetime


class InterventionRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    intervention_id: str
    tutor_id: str
    tutor_name: str
    intervention_type: str
    kind: str = Field(description="automated | human | program")
    step: str = Field(description="task | kickoff | checkin | review | escalation | program | message")
    parent_id: str | None = Field(description="The case this step belongs to; null for a case itself")
    title: str
    trigger_reason: str
    recommended_date: datetime
    risk_level: str | None = Field(description="The tutor's risk level when the rules recommended this")
    churn_score: float | None = Field(description="The tutor's churn score when the rules recommended this")
    owner_role: str | None
    assigned_to: str | None
    requires_approval: bool
    approved_by: str | None
    approved_at: datetime | None
    first_action_at: datetime | None
    status: str = Field(description="needs_approval | pending | in_progress | completed | cancelled")
    due_date: datetime | None
    overdue: bool = Field(description="Open and past its due date")
    escalated_at: datetime | None
    escalated_to_role: str | None
    completed_date: datetime | None
    outcome: str | None
    notes: str | None
    opened_at: datetime | None = Field(description="Automated: when the tutor opened the message")
    responded_at: datetime | None = Field(description="Automated: when the tutor responded")
    follow_up_result: str | None
    ends_at: datetime | None = Field(description="Programs: when the program ends")
    rules_version: str
    matched_rules: list[str]
    revision: int


class CaseRead(InterventionRow):
    events: list[EventRead] = Field(description="Every change, oldest first")


class QueuePage(BaseModel):
    scope: Scope  # type: ignore[valid-type]
    items: list[InterventionRow]
    total: int
    limit: int
    offset: int


class TutorInterventions(BaseModel):
    tutor_id: str
    items: list[CaseRead] = Field(description="Every case and step, newest recommendation first")
    total: int
    limit: int
    offset: int


class _Body(BaseModel):
    # A misspelt field is refused by name instead of being silently dropped.
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Body):
    notes: str | None = Field(default=None, max_length=4000)


class AssignBody(_Body):
    assignee: str = Field(min_length=1, max_length=64, description="user_id of an active staff user")
    notes: str | None = Field(default=None, max_length=4000)


class CompleteBody(_Body):
    outcome: Outcome
    notes: str | None = Field(default=None, max_length=4000)


class CancelBody(_Body):
    reason: str = Field(min_length=1, max_length=500)


class ExtendBody(_Body):
    extend_days: float = Field(gt=0, le=365, description="Days to add to the program (up to its maximum duration)")
    notes: str | None = Field(default=None, max_length=4000)


class TaskViewRead(BaseModel):
    """The task's state as its workflow holds it after the Update."""

    model_config = ConfigDict(from_attributes=True)

    intervention_id: str
    status: str
    assigned_to: str | None
    approved_by: str | None
    escalated: bool
    outcome: str | None
    notes: str | None
    due_at: datetime | None
    revision: int


class TaskUpdateResult(BaseModel):
    update: str
    task: TaskViewRead
    intervention: CaseRead = Field(description="The row re-read after the Update (written by the workflow)")


class TargetsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    acceptance_rate: float = Field(description="PRD §4.4: more than")
    completion_rate: float = Field(description="PRD §4.4: more than")
    impact_rate: float = Field(description="PRD §4.4: more than")
    time_to_action_hours: float = Field(description="PRD §4.4: less than, for the risk level below")
    time_to_action_risk_level: str


class EffectivenessRowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    intervention_type: str | None = Field(description="null: all types")
    risk_level: str | None = Field(description="null: all levels (or recorded before risk was stored)")
    kinds: list[str]
    recommended: int
    acceptance_base: int = Field(description="Human: recommended; automated: messages sent")
    accepted: int = Field(description="Human: acted upon; automated: opened or responded")
    acceptance_rate: float | None
    closed: int
    completed: int
    completion_rate: float | None = Field(description="completed / closed (completed + cancelled)")
    impact_measured: int = Field(description="Cases old enough for the impact window, with both scores")
    improved: int
    impact_rate: float | None
    actions_timed: int
    time_to_action_median_hours: float | None
    time_to_action_mean_hours: float | None
    on_target: dict[str, bool | None] = Field(description="Each figure against its target; null: no verdict")


class EffectivenessReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    as_of: datetime
    since: datetime
    days: int
    impact_window_days: int
    improvement_points: float
    targets: TargetsRead
    overall: EffectivenessRowRead
    by_risk: list[EffectivenessRowRead]
    rows: list[EffectivenessRowRead] = Field(description="Per intervention type x risk level")
