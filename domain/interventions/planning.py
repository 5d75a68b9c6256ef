"""From a tutor's facts to the interventions to start, using the active intervention rule set."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from domain.interventions.service import open_types_for
from rules.interventions import CompiledInterventionRules
from workflows.inputs import Decision, InterventionPlan

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_key(as_of: datetime, window_days: int) -> str:
    """Start date of the fixed ``window_days`` bucket holding ``as_of``: one intervention per type per bucket."""
    bucket = (as_of - _EPOCH).days // window_days
    start = datetime.fromtimestamp(bucket * window_days * 86400, tz=UTC)
    return start.strftime("%Y%m%d")


def intervention_id(tutor_id: str, intervention_type: str, as_of: datetime, window_days: int) -> str:
    return f"intervention-{tutor_id}-{intervention_type}-{window_key(as_of, window_days)}"


def _reason(facts: dict, matched: list[str]) -> str:
    flags = [k.removeprefix("flag_") for k, v in facts.items() if k.startswith("flag_") and v]
    parts = [f"Churn score {facts.get('churn_score')} ({facts.get('risk_level')})", f"rules: {', '.join(matched)}"]
    if flags:
        parts.append(f"patterns: {', '.join(flags)}")
    return "; ".join(parts)


def plan_interventions(db: Session, tutor_id: str, *, as_of: datetime, facts: dict, rules: CompiledInterventionRules,
                       time_scale: float) -> Decision:
    matched, actions = rules.evaluate(facts)
    already_open = open_types_for(db, tutor_id)
    plans = []
    for action in actions:
        if action in already_open:
            continue  # one open case per type per tutor; the running workflow owns it
        spec = rules.spec.interventions[action]
        rules_for_action = [rid for rid in matched if action in next(r.then for r in rules.spec.rules if r.id == rid)]
        plans.append(InterventionPlan(
            intervention_id=intervention_id(tutor_id, action, as_of, spec.window_days),
            tutor_id=tutor_id, intervention_type=action, kind=spec.kind, title=spec.title,
            trigger_reason=_reason(facts, rules_for_action), recommended_at=as_of,
            rules_version=rules.version_label, rules_hash=rules.hash, matched_rules=rules_for_action,
            owner_role=spec.owner_role, escalate_to_role=spec.escalate_to_role,
            sla_seconds=spec.sla_hours * 3600 * time_scale if spec.sla_hours else None,
            message_subject=spec.message_subject, message_body=spec.message_body,
        ))
    return Decision(tutor_id=tutor_id, rules_version=rules.version_label, plans=plans)
