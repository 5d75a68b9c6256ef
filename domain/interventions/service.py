"""Intervention rows, their event trail and the outbox. Written only by intervention workflow activities (the
workflow holds the state; these functions persist it idempotently); read by the API and pages."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from domain.events.models import TutorEvent
from domain.interventions.models import (
    Intervention,
    InterventionEvent,
    InterventionStatus,
    OutboxMessage,
    OutboxStatus,
)
from domain.scoring.models import ChurnPrediction
from workflows.inputs import FollowUpResult, InterventionPlan, InterventionStep, TaskSnapshot


def record_intervention(db: Session, plan: InterventionPlan, *, now: datetime) -> Intervention:
    """Insert-if-absent on the intervention id: a retried activity returns the row it already wrote."""
    row = db.get(Intervention, plan.intervention_id)
    if row is not None:
        return row
    due = now + timedelta(seconds=plan.sla_seconds) if plan.sla_seconds is not None else None
    # A program's approval lives on its kickoff task (the one a manager approves in the queue), not on the program.
    status = {"automated": InterventionStatus.in_progress, "program": InterventionStatus.pending}.get(
        plan.kind, InterventionStatus.needs_approval if plan.requires_approval else InterventionStatus.pending)
    row = Intervention(
        intervention_id=plan.intervention_id, tutor_id=plan.tutor_id, intervention_type=plan.intervention_type,
        kind=plan.kind, step=plan.step, parent_id=plan.parent_id, title=plan.title[:120],
        trigger_reason=plan.trigger_reason[:500], recommended_date=plan.recommended_at, risk_level=plan.risk_level,
        churn_score=plan.churn_score, owner_role=plan.owner_role, requires_approval=plan.requires_approval,
        status=status, due_date=due, rules_version=plan.rules_version, rules_hash=plan.rules_hash,
        matched_rules=plan.matched_rules, created_at=now, updated_at=now,
    )
    db.add(row)
    db.add(InterventionEvent(intervention_id=row.intervention_id, revision=0, event="recorded", actor=None,
                             detail={"rules_version": plan.rules_version, "matched_rules": plan.matched_rules}, at=now))
    db.flush()
    return row


def record_plans(db: Session, plans: list[InterventionPlan], *, now: datetime) -> None:
    """The decide activity writes the rows it plans in its own transaction, so the next evaluation's caps and
    open-case checks see them even before their workflows have run a step."""
    for plan in plans:
        record_intervention(db, plan, now=now)


def _event(db: Session, intervention_id: str, revision: int, event: str, actor: str | None, at: datetime,
           detail: dict[str, Any] | None = None) -> None:
    exists = db.execute(select(InterventionEvent.event_id).where(
        InterventionEvent.intervention_id == intervention_id, InterventionEvent.revision == revision,
        InterventionEvent.event == event)).first()
    if exists is None:
        db.add(InterventionEvent(intervention_id=intervention_id, revision=revision, event=event, actor=actor,
                                 detail=detail or {}, at=at))


def save_snapshot(db: Session, snap: TaskSnapshot) -> Intervention:
    """Writes the workflow's state after one change. Revision-guarded: a retried or late write of an older
    state never overwrites a newer one, and the event row is unique per (case, revision, event)."""
    row = record_intervention(db, snap.plan, now=snap.at)
    v = snap.view
    if v.revision > row.revision:
        row.status, row.assigned_to, row.outcome, row.notes = v.status, v.assigned_to, v.outcome, v.notes
        row.approved_by = v.approved_by
        if v.approved_by and row.approved_at is None:
            row.approved_at = snap.at
        if v.due_at is not None:
            row.due_date = v.due_at
        if snap.event in ("approved", "claimed", "assigned", "completed") and row.first_action_at is None:
            row.first_action_at = snap.at
            parent = db.get(Intervention, row.parent_id) if row.step == "kickoff" and row.parent_id else None
            if parent is not None and parent.first_action_at is None:
                parent.first_action_at = snap.at  # a program is acted upon when its kickoff is
        if snap.event == "escalated" and row.escalated_at is None:
            row.escalated_at, row.escalated_to_role = snap.at, snap.plan.escalate_to_role
        if snap.event == "reminded":
            row.reminded_at = snap.at
        if snap.event in ("started", "extended") and v.due_at is not None:
            row.ends_at = v.due_at  # a program's clock starts when its kickoff closes
        if v.status in (InterventionStatus.completed, InterventionStatus.cancelled) and row.completed_date is None:
            row.completed_date = snap.at
        row.revision, row.updated_at = v.revision, snap.at
    _event(db, row.intervention_id, v.revision, snap.event, snap.actor, snap.at,
           {k: x for k, x in (("assigned_to", v.assigned_to), ("outcome", v.outcome), ("notes", v.notes)) if x})
    return row


def write_messages(db: Session, step: InterventionStep) -> list[OutboxMessage]:
    """One outbox row per channel, keyed by case + step + channel (written once). In-app rows are the
    notification itself; email rows wait, queued, for the delivery activity."""
    plan, out = step.plan, []
    channels = plan.channels if step.recipient_role is None else ["in_app"]  # staff notices stay in the app
    subject = plan.message_subject or plan.title
    body = plan.message_body or plan.title  # never the trigger reason: it carries the churn score, staff-only
    if step.recipient_role is not None:
        subject = f"{step.step.capitalize()}: {plan.title}"
        body = f"{plan.title} for tutor {plan.tutor_id} ({plan.intervention_id}) needs attention: {step.step}."
    for channel in channels:
        message_id = f"{plan.intervention_id}:{step.step}:{channel}"
        message = db.get(OutboxMessage, message_id)
        if message is None:
            message = OutboxMessage(
                message_id=message_id, intervention_id=plan.intervention_id, tutor_id=plan.tutor_id, channel=channel,
                recipient_role=step.recipient_role, recipient=step.recipient, subject=subject[:200], body=body[:4000],
                payload={"intervention_type": plan.intervention_type, "rules_version": plan.rules_version,
                         "step": step.step},
                status=OutboxStatus.sent if channel == "in_app" else OutboxStatus.queued,
                sent_at=step.at if channel == "in_app" else None, created_at=step.at,
            )
            db.add(message)
        out.append(message)
    db.flush()
    return out


def withdraw_emails(db: Session, intervention_id: str, *, reason: str) -> int:
    """Queued email rows of a cancelled case become failed with ``reason`` (a row already sent stays sent).

    A delivery attempt racing this may still be mid-send: it then marks its row sent, which is the truth."""
    rows = db.execute(select(OutboxMessage).where(OutboxMessage.intervention_id == intervention_id,
                                                  OutboxMessage.channel == "email",
                                                  OutboxMessage.status == OutboxStatus.queued)).scalars().all()
    for row in rows:
        row.status, row.last_error = OutboxStatus.failed, reason
    return len(rows)


def record_response(db: Session, message_id: str, *, opened: bool, response: str | None, now: datetime) -> OutboxMessage | None:
    """The tutor opened or answered a message: stamped on the message and on its case (first time only)."""
    message = db.get(OutboxMessage, message_id)
    if message is None or message.recipient_role is not None:
        return None
    row = db.get(Intervention, message.intervention_id)
    if opened or response is not None:
        message.opened_at = message.opened_at or now
        if row is not None:
            row.opened_at = row.opened_at or now
    if response is not None:
        message.responded_at, message.response = message.responded_at or now, response[:2000]
        if row is not None:
            row.responded_at = row.responded_at or now
    return message


def training_completed_since(db: Session, tutor_id: str, since: datetime, until: datetime) -> FollowUpResult:
    n = db.execute(select(func.count()).select_from(TutorEvent).where(
        TutorEvent.tutor_id == tutor_id, TutorEvent.event_type == "training_completed",
        TutorEvent.event_timestamp >= since, TutorEvent.event_timestamp <= until)).scalar_one()
    return FollowUpResult(done=n > 0, detail=f"{n} training module(s) completed since the suggestion")


def latest_facts(db: Session, tutor_id: str) -> dict[str, Any]:
    row = db.execute(select(ChurnPrediction.facts).where(ChurnPrediction.tutor_id == tutor_id)
                     .order_by(ChurnPrediction.prediction_date.desc()).limit(1)).scalar_one_or_none()
    return dict(row or {})


def set_follow_up(db: Session, intervention_id: str, result: FollowUpResult, *, now: datetime) -> None:
    row = db.get(Intervention, intervention_id)
    if row is not None and row.follow_up_result is None:
        row.follow_up_result, row.updated_at = result.detail[:200], now
        _event(db, intervention_id, row.revision, "follow_up", None, now, {"done": result.done, "detail": result.detail})
