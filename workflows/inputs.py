"""Workflow and activity payloads: one dataclass in, one out. Standard library only (workflow sandbox)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class SessionsIngested:
    session_ids: list[str] = field(default_factory=list)


@dataclass
class TutorLifecycleInput:
    tutor_id: str
    evaluations: int = 0  # carried across continue-as-new
    pending_session_ids: list[str] = field(default_factory=list)
    evaluate_now: bool = False
    evaluations_per_run: int = 200  # continue-as-new after this many, to bound the history


@dataclass
class EvaluateTutorInput:
    tutor_id: str
    as_of: datetime
    session_ids: list[str] = field(default_factory=list)


@dataclass
class EvaluationResult:
    tutor_id: str
    as_of: datetime
    churn_score: float
    risk_level: str
    tier: str | None
    flags: list[str]
    sessions_marked: int
    facts: dict


@dataclass
class DecideInput:
    tutor_id: str
    as_of: datetime
    facts: dict


@dataclass
class InterventionPlan:
    """One intervention to start: everything its workflow needs, fixed by the rules version that chose it."""

    intervention_id: str
    tutor_id: str
    intervention_type: str
    kind: str  # automated | human
    title: str
    trigger_reason: str
    recommended_at: datetime
    rules_version: str
    rules_hash: str
    matched_rules: list[str]
    owner_role: str | None = None
    escalate_to_role: str | None = None
    sla_seconds: float | None = None  # already multiplied by the time scale
    message_subject: str | None = None
    message_body: str | None = None


@dataclass
class Decision:
    tutor_id: str
    rules_version: str
    plans: list[InterventionPlan]


@dataclass
class TutorState:
    tutor_id: str
    evaluations: int
    pending_sessions: int
    last_evaluated_at: datetime | None
    churn_score: float | None
    risk_level: str | None
    started_interventions: list[str]


@dataclass
class CompleteTaskSignal:
    outcome: str
    notes: str | None = None
    completed_by: str | None = None


@dataclass
class InterventionStep:
    """Input to the intervention activities: the plan plus which step of it (keys the outbox row)."""

    plan: InterventionPlan
    step: str
    at: datetime
    completion: CompleteTaskSignal | None = None


@dataclass
class InterventionResult:
    intervention_id: str
    status: str
    escalated: bool
    outcome: str | None


@dataclass
class SweepInput:
    grace_seconds: int


@dataclass
class SweepResult:
    tutors_signalled: int


@dataclass
class SynthTickInput:
    pass


@dataclass
class SynthTickResult:
    sessions: int
    feedback: int
    events: int


@dataclass
class RollupInput:
    """A population run. ``as_of`` None: midnight UTC of the day the run starts (the schedule's own midnight)."""
    review: bool = False  # recompute the tier cut-offs from the population first (the monthly review)
    as_of: datetime | None = None


@dataclass
class PopulationInput:
    as_of: datetime
    review: bool = False


@dataclass
class RollupSummary:
    as_of: datetime
    tutors: int
    active: int
    seconds: float
    review: str | None
    tier_counts: dict = field(default_factory=dict)
    risk_counts: dict = field(default_factory=dict)
    risk_changed: list[str] = field(default_factory=list)
    status_changed: int = 0
    tutors_signalled: int = 0


@dataclass
class TrendsInput:
    as_of: datetime | None = None


@dataclass
class TrendsSummary:
    as_of: datetime
    tutors: int


@dataclass
class SignalTutorsInput:
    tutor_ids: list[str] = field(default_factory=list)
