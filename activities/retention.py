"""The retention purge (PRD "Compliance & Security"): educational records older than settings.record_retention_days
and audit rows older than settings.audit_retention_days are deleted, in bounded batches, one transaction each.

What counts as an educational record: a session and the feedback on it, a scored first-session booking, the tutor's
activity events, and outbox messages that reached a final state (sent or failed). Derived tutor risk data (metrics,
predictions, tiers, trends) and interventions are not records of a student and are kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, SQLModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.audit.models import AuditLog
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.first_sessions.models import FirstSessionAlert
from domain.interventions.models import OutboxMessage, OutboxStatus
from domain.sessions.models import TutoringSession
from workflows.retention import PurgeInput, RetentionResult

ACTOR = "system:retention"
TABLES = ("student_feedback", "sessions", "first_session_alerts", "tutor_events", "outbox", "audit_log")


@dataclass(frozen=True)
class _Target:
    """One table to purge: rows matching `expired`, their `children` (model, foreign key column) deleted first."""

    model: type[SQLModel]
    key: InstrumentedAttribute
    expired: ColumnElement[bool]
    children: tuple[tuple[type[SQLModel], InstrumentedAttribute], ...] = ()


def _targets(record_cutoff: datetime, audit_cutoff: datetime) -> list[_Target]:
    final = (OutboxStatus.sent.value, OutboxStatus.failed.value)  # queued/sending messages are still in flight
    return [
        _Target(TutoringSession, TutoringSession.session_id, TutoringSession.scheduled_start < record_cutoff,
                children=((StudentFeedback, StudentFeedback.session_id),)),
        _Target(FirstSessionAlert, FirstSessionAlert.alert_id, FirstSessionAlert.scheduled_start < record_cutoff),
        _Target(TutorEvent, TutorEvent.event_id, TutorEvent.event_timestamp < record_cutoff),
        _Target(OutboxMessage, OutboxMessage.message_id,
                and_(OutboxMessage.status.in_(final),
                     func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at) < record_cutoff)),
        # The database refuses deletes of audit rows younger than 3 years (migration 0009); the settings floor
        # (1096 days) keeps this cutoff behind it.
        _Target(AuditLog, AuditLog.audit_id, AuditLog.at < audit_cutoff),
    ]


def _delete_batch(db: Session, target: _Target, batch_size: int, counts: dict[str, int]) -> int:
    """Deletes up to batch_size expired rows (and their children); returns how many parent rows it found."""
    ids = db.execute(select(target.key).where(target.expired).order_by(target.key).limit(batch_size)).scalars().all()
    if not ids:
        return 0
    for child, fk in target.children:
        result = db.execute(delete(child).where(fk.in_(ids)).execution_options(synchronize_session=False))
        counts[child.__tablename__] += result.rowcount
    result = db.execute(delete(target.model).where(target.key.in_(ids)).execution_options(synchronize_session=False))
    counts[target.model.__tablename__] += result.rowcount
    return len(ids)


def _resumed_counts() -> dict[str, int]:
    """A retried attempt continues the counts its predecessor heartbeated: the audit row reports the whole run
    (batches committed after the last heartbeat are not counted)."""
    counts = dict.fromkeys(TABLES, 0)
    details: list[Any] = list(activity.info().heartbeat_details)
    if details and isinstance(details[0], dict):
        counts.update({k: int(v) for k, v in details[0].items() if k in counts})
    return counts


def _parse_as_of(inp: PurgeInput) -> datetime:
    """Bad input is not retried: the same payload would fail the same way on every attempt."""
    if inp.batch_size < 1:
        raise ApplicationError(f"batch_size must be at least 1, got {inp.batch_size}", non_retryable=True)
    try:
        as_of = datetime.fromisoformat(inp.as_of)
    except ValueError:
        raise ApplicationError(f"as_of is not an ISO 8601 timestamp: {inp.as_of!r}", non_retryable=True) from None
    if as_of.tzinfo is None:
        raise ApplicationError(f"as_of needs a time zone: {inp.as_of!r}", non_retryable=True)
    return as_of


@dataclass
class RetentionActivities:
    engine: Engine
    settings: Settings

    @activity.defn
    def purge_expired(self, inp: PurgeInput) -> RetentionResult:
        as_of = _parse_as_of(inp)
        record_cutoff = as_of - timedelta(days=self.settings.record_retention_days)
        audit_cutoff = as_of - timedelta(days=self.settings.audit_retention_days)
        counts = _resumed_counts()
        for target in _targets(record_cutoff, audit_cutoff):
            while True:
                with session_scope(self.engine) as db:
                    found = _delete_batch(db, target, inp.batch_size, counts)
                # A copy, after the commit: the SDK encodes details later, and what it reports must be done.
                activity.heartbeat(dict(counts))
                if found < inp.batch_size:
                    break
        self._record_run(as_of, record_cutoff, audit_cutoff, counts)
        activity.logger.info("retention purge as of %s: %s", inp.as_of, counts)
        return RetentionResult(as_of=as_of.isoformat(), record_cutoff=record_cutoff.isoformat(),
                               audit_cutoff=audit_cutoff.isoformat(), deleted=counts)

    def _record_run(self, as_of: datetime, record_cutoff: datetime, audit_cutoff: datetime,
                    counts: dict[str, int]) -> None:
        info = activity.info()
        run = f"{info.workflow_id}/{info.workflow_run_id}"
        with session_scope(self.engine) as db:
            # Once per workflow run: an attempt retried after this commit does not log the purge twice.
            seen = db.execute(select(AuditLog.audit_id).where(
                AuditLog.actor == ACTOR, AuditLog.resource_type == "retention", AuditLog.resource_id == run)).first()
            if seen is None:
                db.add(AuditLog(at=utcnow(), actor=ACTOR, action="write", resource_type="retention", resource_id=run,
                                source="worker", details={
                                    "as_of": as_of.isoformat(), "record_cutoff": record_cutoff.isoformat(),
                                    "audit_cutoff": audit_cutoff.isoformat(), "deleted": dict(counts)}))
