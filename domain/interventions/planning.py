"""From a tutor's facts to the interventions to start and the open ones to cancel, under one rules version.

``plan`` is pure (rules, facts, the tutor's existing cases): the decide activity, the shadow run and the
dry run all call it, so a dry run shows exactly what publishing would do.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from domain.interventions.facts import enrich
from domain.interventions.models import OPEN, Intervention
from domain.scoring.models import ChurnPrediction, latest_prediction_days
from domain.sessions.service import IN_CHUNK
from domain.tutors.models import Tutor
from rules.interventions import CompiledInterventionRules, InterventionSpec
from workflows.inputs import Cancellation, Decision, InterventionPlan

HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class Case:
    """The part of an existing top-level case that planning needs."""

    intervention_id: str
    intervention_type: str
    kind: str
    status: str
    recommended_date: datetime


def intervention_id(tutor_id: str, intervention_type: str, as_of: datetime, key: str | None = None) -> str:
    """The business key (and workflow id): per evaluation time, or per session for A3. An evaluation's as_of is
    fixed in its workflow, so a retried decision yields the same id and Temporal refuses a second start."""
    return f"intervention-{tutor_id}-{intervention_type}-{key or as_of.astimezone(UTC).strftime('%Y%m%dT%H%M%S')}"


def _reason(facts: dict[str, Any], matched: list[str]) -> str:
    flags = [k.removeprefix("flag_") for k, v in facts.items() if k.startswith("flag_") and v]
    parts = [f"Churn score {facts.get('churn_score')} ({facts.get('risk_level')})", f"rules: {', '.join(matched)}"]
    if flags:
        parts.append(f"patterns: {', '.join(flags)}")
    return "; ".join(parts)


def _hours(h: float | None, scale: float) -> float | None:
    return h * HOUR * scale if h is not None else None


def _days(d: float | None, scale: float) -> float | None:
    return d * DAY * scale if d is not None else None


def build_plan(iid: str, tutor_id: str, itype: str, spec: InterventionSpec, *, facts: dict[str, Any], matched: list[str],
               as_of: datetime, rules: CompiledInterventionRules, time_scale: float) -> InterventionPlan:
    fu = spec.follow_up
    escalation = None
    if fu is not None and fu.escalation is not None:
        escalation = InterventionPlan(
            intervention_id=f"{iid}-escalation", tutor_id=tutor_id, intervention_type=itype, kind="human",
            title=fu.escalation.title, trigger_reason="", recommended_at=as_of, rules_version=rules.version_label,
            rules_hash=rules.hash, matched_rules=matched, step="escalation", parent_id=iid,
            risk_level=facts.get("risk_level"), churn_score=facts.get("churn_score"), owner_role=fu.escalation.owner_role,
            escalate_to_role="admin", sla_seconds=_hours(fu.escalation.sla_hours, time_scale),
        )
    body = spec.message_body
    if body and facts.get("weakest_subject") and itype.startswith("A2"):
        body = f"{body} (Subject: {facts['weakest_subject']}.)"
    return InterventionPlan(
        intervention_id=iid, tutor_id=tutor_id, intervention_type=itype, kind=spec.kind, title=spec.title,
        trigger_reason=_reason(facts, matched), recommended_at=as_of, rules_version=rules.version_label,
        rules_hash=rules.hash, matched_rules=matched, step="program" if spec.kind == "program" else "task",
        risk_level=facts.get("risk_level"), churn_score=facts.get("churn_score"), owner_role=spec.owner_role,
        escalate_to_role=spec.escalate_to_role, requires_approval=spec.requires_approval,
        approver_role=spec.approver_role if spec.requires_approval else None,
        sla_seconds=_hours(spec.sla_hours, time_scale), reminder_before_seconds=_hours(spec.reminder_before_hours, time_scale),
        message_subject=spec.message_subject, message_body=body, channels=list(spec.channels),
        send_delay_seconds=_hours(spec.send_delay_hours, time_scale) or 0.0,
        track_seconds=_days(spec.track_days, time_scale) or 0.0,
        follow_up=fu.kind if fu else None, follow_up_seconds=_days(fu.after_days, time_scale) if fu else None,
        escalation_plan=escalation, cancel_if_unmatched=spec.cancel_if_unmatched,
        duration_seconds=_days(spec.duration_days, time_scale), max_duration_seconds=_days(spec.max_duration_days, time_scale),
        checkin_every_seconds=_days(spec.checkin_every_days, time_scale),
        checkin_sla_seconds=_hours(spec.checkin_sla_hours, time_scale), day_seconds=DAY * time_scale,
    )


def plan(tutor_id: str, facts: dict[str, Any], cases: list[Case], *, rules: CompiledInterventionRules, as_of: datetime,
         time_scale: float) -> Decision:
    matched, actions = rules.evaluate(facts)
    # Rows this very decision already wrote (a retried activity: the first attempt committed, then the worker
    # died before Temporal heard back) are planned again, so their workflows still start; they neither count
    # against a cap nor block their own type. Their ids derive from as_of, so the retry yields the same ids.
    prior = [c for c in cases if c.recommended_date != as_of]
    known = {c.intervention_id for c in prior}
    open_types = {c.intervention_type for c in prior if c.status in OPEN}
    plans, capped = [], []
    for itype in actions:
        spec = rules.spec.interventions[itype]
        started_in_cap = sum(1 for c in prior if c.intervention_type == itype
                             and c.recommended_date > as_of - timedelta(days=spec.cap.days))
        if spec.per == "first_session":
            ids = [intervention_id(tutor_id, itype, as_of, key=sid) for sid in facts.get("first_session_ids") or []]
            new = [i for i in ids if i not in known]
        else:
            new = [] if itype in open_types else [intervention_id(tutor_id, itype, as_of)]
        room = max(0, spec.cap.max - started_in_cap)
        if len(new) > room:
            capped.append(itype)
        for iid in new[:room]:
            plans.append(build_plan(iid, tutor_id, itype, spec, facts=facts, matched=rules.rules_for(itype, matched),
                                    as_of=as_of, rules=rules, time_scale=time_scale))
    cancel = []
    for c in cases:
        spec = rules.spec.interventions.get(c.intervention_type)
        if (c.status in OPEN and c.kind == "automated" and c.intervention_type not in actions
                and spec is not None and spec.cancel_if_unmatched):
            cancel.append(Cancellation(c.intervention_id, f"no longer matched under {rules.version_label}: "
                                                          f"churn {facts.get('churn_score')} ({facts.get('risk_level')})"))
    return Decision(tutor_id=tutor_id, rules_version=rules.version_label, plans=plans, cancel=cancel, capped=capped)


def load_cases(db: Session, tutor_ids: list[str], *, since: datetime) -> dict[str, list[Case]]:
    """Each tutor's top-level cases that are open or were recommended since ``since`` (the longest cap)."""
    out: dict[str, list[Case]] = defaultdict(list)
    i = Intervention
    for k in range(0, len(tutor_ids), IN_CHUNK):
        rows = db.execute(select(i.tutor_id, i.intervention_id, i.intervention_type, i.kind, i.status, i.recommended_date)
                          .where(i.tutor_id.in_(tutor_ids[k:k + IN_CHUNK]), i.parent_id.is_(None),
                                 or_(i.status.in_(OPEN), i.recommended_date > since)))
        for tutor_id, *rest in rows:
            out[tutor_id].append(Case(*rest))
    return out


def longest_cap(rules: CompiledInterventionRules) -> int:
    return max(s.cap.days for s in rules.spec.interventions.values())


def decide(db: Session, tutor_id: str, facts: dict[str, Any], *, rules: CompiledInterventionRules, as_of: datetime,
           time_scale: float, shadow: CompiledInterventionRules | None = None) -> tuple[Decision, Decision | None]:
    """The active decision and, when a shadow candidate runs, what it would have decided on the same facts
    and the same existing cases (read before the active decision's rows are written)."""
    enriched = enrich(db, {tutor_id: facts}, as_of=as_of)[tutor_id]
    days = max(longest_cap(r) for r in (rules, shadow) if r is not None)
    cases = load_cases(db, [tutor_id], since=as_of - timedelta(days=days))[tutor_id]
    active = plan(tutor_id, enriched, cases, rules=rules, as_of=as_of, time_scale=time_scale)
    candidate = plan(tutor_id, enriched, cases, rules=shadow, as_of=as_of, time_scale=time_scale) if shadow else None
    return active, candidate


def population_facts(db: Session, *, as_of: datetime) -> dict[str, dict[str, Any]]:
    """Every non-churned tutor's facts from their latest evaluation on or before ``as_of``'s day, enriched."""
    days = latest_prediction_days(as_of.astimezone(UTC).date())
    p = ChurnPrediction
    rows = db.execute(select(p.tutor_id, p.facts).join(days, (days.c.tutor_id == p.tutor_id) & (days.c.day == p.prediction_date))
                      .join(Tutor, Tutor.tutor_id == p.tutor_id).where(Tutor.status != "churned"))
    base = {tutor_id: dict(facts) for tutor_id, facts in rows if facts}
    return enrich(db, base, as_of=as_of)


def preview_population(db: Session, rules: CompiledInterventionRules, *, as_of: datetime,
                       facts: dict[str, dict[str, Any]] | None = None) -> dict[str, Decision]:
    """What ``rules`` would decide for every tutor right now (nothing is written). Pass ``facts`` from
    population_facts to compare two rule versions on the same population without reading it twice."""
    facts = facts if facts is not None else population_facts(db, as_of=as_of)
    cases = load_cases(db, list(facts), since=as_of - timedelta(days=longest_cap(rules)))
    return {t: plan(t, f, cases.get(t, []), rules=rules, as_of=as_of, time_scale=1.0) for t, f in facts.items()}
