"""Intervention records and the outbox. Written only by intervention workflow activities; read by the API."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from domain.interventions.models import Intervention, InterventionStatus, OutboxMessage
from domain.tutors.models import Tutor
from workflows.inputs import CompleteTaskSignal, InterventionPlan

OPEN = (InterventionStatus.pending, InterventionStatus.in_progress)


def record_intervention(db: Session, plan: InterventionPlan, *, now: datetime) -> Intervention:
    """Insert-if-absent on the intervention id: a retried activity returns the row it already wrote."""
    row = db.get(Intervention, plan.intervention_id)
    if row is not None:
        return row
    due = now + timedelta(seconds=plan.sla_seconds) if plan.sla_seconds is not None else None
    row = Intervention(
        intervention_id=plan.intervention_id, tutor_id=plan.tutor_id, intervention_type=plan.intervention_type,
        kind=plan.kind, title=plan.title, trigger_reason=plan.trigger_reason[:500], recommended_date=plan.recommended_at,
        owner_role=plan.owner_role, status=InterventionStatus.pending, due_date=due,
        rules_version=plan.rules_version, rules_hash=plan.rules_hash, matched_rules=plan.matched_rules,
        created_at=now, updated_at=now,
    )
    db.add(row)
    db.flush()
    return row


def send_message(db: Session, plan: InterventionPlan, *, step: str, now: datetime) -> OutboxMessage:
    """The in-app notification for an automated intervention; keyed by intervention + step (sent once)."""
    message_id = f"{plan.intervention_id}:{step}"
    message = db.get(OutboxMessage, message_id)
    if message is None:
        message = OutboxMessage(
            message_id=message_id, intervention_id=plan.intervention_id, tutor_id=plan.tutor_id, channel="in_app",
            subject=plan.message_subject or plan.title, body=plan.message_body or plan.trigger_reason,
            payload={"intervention_type": plan.intervention_type, "rules_version": plan.rules_version}, created_at=now,
        )
        db.add(message)
    row = db.get(Intervention, plan.intervention_id)
    if row is not None and row.status in OPEN:
        row.status, row.completed_date, row.updated_at = InterventionStatus.completed, now, now
    return message


def escalate(db: Session, intervention_id: str, *, to_role: str | None, now: datetime) -> Intervention | None:
    row = db.get(Intervention, intervention_id)
    if row is not None and row.status in OPEN and row.escalated_at is None:
        row.escalated_at, row.escalated_to_role, row.updated_at = now, to_role, now
    return row


def complete(db: Session, intervention_id: str, signal: CompleteTaskSignal, *, now: datetime) -> Intervention | None:
    row = db.get(Intervention, intervention_id)
    if row is not None and row.status in OPEN:
        row.status, row.outcome, row.notes = InterventionStatus.completed, signal.outcome, signal.notes
        row.assigned_to = signal.completed_by or row.assigned_to
        row.completed_date, row.updated_at = now, now
    return row


def open_types_for(db: Session, tutor_id: str) -> set[str]:
    stmt = select(Intervention.intervention_type).where(Intervention.tutor_id == tutor_id, Intervention.status.in_(OPEN))
    return set(db.execute(stmt).scalars())


def list_tasks(db: Session, *, open_only: bool = True, kind: str | None = "human", limit: int = 50, offset: int = 0
               ) -> tuple[list[tuple[Intervention, str]], int]:
    """Tasks with their tutor's name, most urgent first (escalated, then earliest due)."""
    where = []
    if open_only:
        where.append(Intervention.status.in_(OPEN))
    if kind:
        where.append(Intervention.kind == kind)
    total = db.execute(select(func.count()).select_from(Intervention).where(*where)).scalar_one()
    stmt = (
        select(Intervention, Tutor.name).join(Tutor, Tutor.tutor_id == Intervention.tutor_id).where(*where)
        .order_by(Intervention.escalated_at.is_(None), Intervention.due_date.is_(None), Intervention.due_date,
                  Intervention.intervention_id)
        .limit(limit).offset(offset)
    )
    return [(row, name) for row, name in db.execute(stmt)], total
