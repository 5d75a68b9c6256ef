"""Workflow and activity payloads: one dataclass in, one out. Standard library only (workflow sandbox)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


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
    """One intervention to start: everything its workflow needs, fixed by the rules version that chose it.

    Durations are seconds already multiplied by the time scale, so a running workflow never re-reads rules:
    it keeps the version (and hash) that created it even after an admin publishes another.
    """

    intervention_id: str
    tutor_id: str
    intervention_type: str
    kind: str  # automated | human | program
    title: str
    trigger_reason: str
    recommended_at: datetime
    rules_version: str
    rules_hash: str
    matched_rules: list[str]
    step: str = "task"  # task | message | kickoff | checkin | review | escalation | program
    parent_id: str | None = None
    risk_level: str | None = None
    churn_score: float | None = None
    owner_role: str | None = None
    escalate_to_role: str | None = None
    requires_approval: bool = False
    approver_role: str | None = None
    sla_seconds: float | None = None
    reminder_before_seconds: float | None = None
    message_subject: str | None = None
    message_body: str | None = None
    channels: list[str] = field(default_factory=lambda: ["in_app"])
    send_delay_seconds: float = 0.0  # A3: the survey goes out 2 h after the first session
    track_seconds: float = 0.0  # automated: how long opened/responded are tracked before the case closes
    follow_up: str | None = None  # automated: check_training (A2) | escalate_if_continues (A4)
    follow_up_seconds: float | None = None
    escalation_plan: InterventionPlan | None = None  # A4: the manager review started if the pattern continues
    cancel_if_unmatched: bool = False  # cancelled when a later evaluation no longer asks for this type
    duration_seconds: float | None = None  # programs: H2 4 weeks, H3 30 days
    max_duration_seconds: float | None = None  # programs: how far `extend` may take it (H3 60 days)
    checkin_every_seconds: float | None = None  # programs: weekly PIP check-ins
    checkin_sla_seconds: float | None = None
    day_seconds: float = 86400.0  # one business day under the time scale (programs extend by days)


@dataclass
class Cancellation:
    intervention_id: str
    reason: str


@dataclass
class Decision:
    tutor_id: str
    rules_version: str
    plans: list[InterventionPlan]
    cancel: list[Cancellation] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)  # intervention types held back by a frequency cap


@dataclass
class TutorState:
    tutor_id: str
    evaluations: int
    pending_sessions: int
    last_evaluated_at: datetime | None
    churn_score: float | None
    risk_level: str | None
    started_interventions: list[str]
    cancelled_interventions: list[str] = field(default_factory=list)


@dataclass
class TaskCommand:
    """Argument of every task Update (claim, unclaim, assign, approve, complete, cancel, extend).

    ``actor_role`` is what the API resolved for the caller; the workflow's validator decides with it, so an
    illegal transition is refused before anything is written.
    """

    actor: str
    actor_role: str
    assignee: str | None = None  # assign
    outcome: str | None = None  # complete: improved | no_change | declined | churned
    notes: str | None = None
    reason: str | None = None  # cancel
    extend_days: float | None = None  # programs: extend (H3 up to its maximum)


@dataclass
class TaskView:
    """A task's state as its workflow holds it (returned by every Update and the `view` query)."""

    intervention_id: str
    status: str  # needs_approval | pending | in_progress | completed | cancelled
    assigned_to: str | None = None
    approved_by: str | None = None
    escalated: bool = False
    outcome: str | None = None
    notes: str | None = None
    due_at: datetime | None = None
    revision: int = 0  # bumps on every change; the row is written only by a newer revision


@dataclass
class TaskSnapshot:
    """What the save activity writes: the workflow's state after one change, plus what changed and who."""

    plan: InterventionPlan
    view: TaskView
    event: str  # recorded | approved | claimed | unclaimed | assigned | completed | cancelled | escalated | reminded ...
    actor: str | None
    at: datetime


@dataclass
class InterventionStep:
    """Input to the intervention activities: the plan plus which step of it (keys the outbox row)."""

    plan: InterventionPlan
    step: str
    at: datetime
    recipient_role: str | None = None  # staff notifications (reminder, escalation) go to a role, not the tutor
    recipient: str | None = None


@dataclass
class FollowUpResult:
    done: bool  # A2: training completed; A4: pattern continued
    detail: str


@dataclass
class InterventionResult:
    intervention_id: str
    status: str
    escalated: bool
    outcome: str | None
    notes: str | None = None


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


def iso_day(value: date | str | None) -> str | None:
    """A day as Temporal payloads carry it: ISO ``YYYY-MM-DD``. Temporal's default data converter has datetime
    but no ``date`` (neither encodes nor decodes it), so payload fields hold the string; a date is accepted."""
    if isinstance(value, datetime):
        raise TypeError(f"a day, not a timestamp: {value!r}")
    return value.isoformat() if isinstance(value, date) else value


def as_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@dataclass
class ScorePopulationInput:
    """The live churn model scores ``day``'s prediction rows (None: today, UTC); ``tutor_ids`` None: everyone."""
    day: str | None = None  # ISO date (iso_day); a date given is stored in that form
    tutor_ids: list[str] | None = None

    def __post_init__(self) -> None:
        self.day = iso_day(self.day)

    @property
    def day_date(self) -> date | None:
        return as_date(self.day)


@dataclass
class ScorePopulationResult:
    version: str | None  # the live churn model's version; None when none is live yet (nothing scored)
    scored: int
    day: str  # ISO date (iso_day); a date given is stored in that form
    unscored: int = 0  # tutors without a prediction row for the day yet (the daily rollup writes them): skipped
    # With the model driving interventions: tutors whose driving risk level moved; signal them to re-decide.
    risk_changed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.day = iso_day(self.day)


@dataclass
class ModelRetrainInput:
    """The daily churn-model retraining. Everything time-bound comes from the settings via the schedule.
    Days are ISO dates (iso_day). ``day`` None: the UTC day the run starts (the schedule's own day); ``end``
    None: the last complete day of data."""
    days: int = 90
    end: str | None = None
    day: str | None = None
    train_timeout_seconds: float = 3600.0
    heartbeat_seconds: float = 120.0
    score_timeout_seconds: float = 900.0

    def __post_init__(self) -> None:
        self.end, self.day = iso_day(self.end), iso_day(self.day)


@dataclass
class TrainCandidateInput:
    day: str  # ISO date: with the data window it keys the registration, so a retry finds its own
    days: int
    end: str | None = None  # ISO date: the last feature day (None: the last complete day of data)


@dataclass
class TrainCandidateResult:
    version: str | None  # None: nothing trained (``skipped`` says why: no data, a span too short to split)
    reused: bool = False  # an earlier attempt of the same run had registered it
    criterion: float | None = None
    data_start: str | None = None  # ISO dates: the feature days trained on
    data_end: str | None = None
    label_source: str | None = None
    skipped: str | None = None


@dataclass
class DecidePromotionInput:
    version: str


@dataclass
class PromotionResult:
    version: str
    promoted: bool
    status: str
    reason: str
    live_version: str | None  # live after the decision
    candidate_auc: float | None = None
    live_auc: float | None = None  # the previous live model's, on the same validation rows


@dataclass
class ModelRetrainResult:
    day: str
    trained: TrainCandidateResult
    promotion: PromotionResult | None
    scoring: ScorePopulationResult
    tutors_signalled: int = 0
