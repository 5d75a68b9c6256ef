"""Interventions a person starts from the tutor profile, through the same path as the ones the rules start.

The plan is planning.build_plan's, from the active rule set's spec of the chosen type (its SLA, owner, approval,
messages, programme length), and its workflow is the one the tutor lifecycle starts for that kind. The workflow id
is the business key intervention-<tutor>-<type>-manual-<UTC day>, so a double submit (or two managers at once)
reaches Temporal twice with one id and only one workflow runs. A type with an open case for the tutor is refused:
the rules never open a second one either. Caps are not applied: they limit what the rules start unasked, and a
person choosing to act has read the history shown beside the form.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from core.errors import InputError, field_error
from domain.interventions import planning
from domain.interventions import service as intervention_service
from domain.interventions.models import OPEN, Intervention
from domain.tutors import service as tutor_service
from rules.interventions import CompiledInterventionRules
from workflows.inputs import InterventionPlan

# The workflow each kind runs as (workflows/tutor_lifecycle.py starts the same ones), by registered name.
WORKFLOWS = {"automated": "AutomatedInterventionWorkflow", "program": "ProgramWorkflow", "human": "HumanTaskWorkflow"}
MANUAL_RULE = "manual"  # matched_rules of a case a person started: no rule matched
REASON_MAX = 300


@dataclass(frozen=True)
class Choice:
    intervention_type: str
    title: str
    kind: str
    owner_role: str | None
    requires_approval: bool


class AlreadyOpen(Exception):
    """The tutor has an open case of this type already (another one than this submission's)."""

    def __init__(self, intervention_id: str, intervention_type: str):
        super().__init__(f"{intervention_id} ({intervention_type}) is still open for this tutor: work or close it "
                         "in the queue before starting another.")
        self.intervention_id = intervention_id


def choices(rules: CompiledInterventionRules) -> list[Choice]:
    """The types of the active rule set a person may start, in the file's order."""
    # A first-session check-in is keyed by the session it follows: there is no such session to start one for.
    return [Choice(name, spec.title, spec.kind, spec.owner_role, spec.requires_approval)
            for name, spec in rules.spec.interventions.items() if spec.per != "first_session"]


def manual_id(tutor_id: str, intervention_type: str, now: datetime) -> str:
    return planning.intervention_id(tutor_id, intervention_type, now,
                                    key=f"manual-{now.astimezone(UTC):%Y%m%d}")


def _open_case(db: Session, tutor_id: str, intervention_type: str) -> str | None:
    i = Intervention
    return db.execute(select(i.intervention_id).where(
        i.tutor_id == tutor_id, i.intervention_type == intervention_type, i.parent_id.is_(None),
        i.status.in_([s.value for s in OPEN])).order_by(i.recommended_date.desc()).limit(1)).scalar_one_or_none()


def plan_manual(db: Session, tutor_id: str, intervention_type: str, *, reason: str | None, started_by: str,
                rules: CompiledInterventionRules, now: datetime, time_scale: float) -> InterventionPlan:
    """The plan to start. Raises tutor_service.NotFound, InputError naming the field, or AlreadyOpen.

    An open case whose id is this very plan's is not refused: it is the first of a double submit, and starting it
    again is answered by Temporal (already started), which the caller reports as done.
    """
    tutor_service.require_tutor(db, tutor_id)
    allowed = {c.intervention_type for c in choices(rules)}
    if intervention_type not in allowed:
        raise InputError([field_error(["body", "intervention_type"], f"choose one of {', '.join(sorted(allowed))}",
                                      "value_error.intervention_type")])
    text = (reason or "").strip()
    if len(text) > REASON_MAX:
        raise InputError([field_error(["body", "reason"], f"at most {REASON_MAX} characters; this has {len(text)}",
                                      "value_error.too_long")])
    iid = manual_id(tutor_id, intervention_type, now)
    existing = _open_case(db, tutor_id, intervention_type)
    if existing is not None and existing != iid:
        raise AlreadyOpen(existing, intervention_type)
    facts = intervention_service.latest_facts(db, tutor_id)
    plan = planning.build_plan(iid, tutor_id, intervention_type, rules.spec.interventions[intervention_type],
                               facts=facts, matched=[MANUAL_RULE], as_of=now, rules=rules, time_scale=time_scale)
    score = (f"churn score {facts['churn_score']} ({facts.get('risk_level')})" if "churn_score" in facts
             else "not evaluated yet")
    why = f"Started by {started_by} from the tutor profile; {score}" + (f": {text}" if text else "")
    return replace(plan, trigger_reason=why[:500])


def record_started(engine: Engine, plan: InterventionPlan, *, now: datetime) -> None:
    """Writes the case's row once its workflow has started, so the page after the redirect lists it (the decide
    activity does the same for the cases the rules start). The workflow's first activity writes the same row
    insert-if-absent; when it wins the race this insert is the one that yields."""
    try:
        with session_scope(engine) as db:
            intervention_service.record_plans(db, [plan], now=now)
    except IntegrityError:
        pass  # the workflow recorded it first: the row is there
