"""Read side of the intervention queue: who sees which cases, filters, ordering, one case with its events, and a
tutor's intervention history. Nothing here writes: every change goes through the case's workflow (an Update),
which validates it and writes the row and its event through an activity.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlmodel import Session

from domain.interventions.models import OPEN, Intervention, InterventionEvent, InterventionStatus
from domain.tutors.models import Tutor
from domain.users.models import Role

CLOSED_STATUSES = (InterventionStatus.completed, InterventionStatus.cancelled)
SCOPES = ("mine", "role", "all")
DUE_FILTERS = ("overdue", "today", "week")
STATUS_FILTERS = ("open", "needs_approval", "all")
# "tasks": what people work (human tasks and programs with their steps). Automated cases are open only while
# the tutor's response is tracked and nobody acts on them, so they stay out of the queue unless asked for.
KIND_FILTERS = ("tasks", "human", "program", "automated", "all")
_KINDS = {"tasks": ("human", "program"), "human": ("human",), "program": ("program",), "automated": ("automated",)}
# Seeing every role's queue is a manager's view (PRD persona 1 assigns work across the team).
WIDE_SCOPE_ROLES = (Role.ops_manager.value, Role.admin.value)


class ScopeNotAllowed(PermissionError):
    """The caller's role may not list this scope; the message says who may."""


@dataclass(frozen=True)
class QueueFilters:
    scope: str = "role"
    risk_levels: Sequence[str] = ()
    types: Sequence[str] = ()
    due: str | None = None
    status: str = "open"
    kind: str = "tasks"

    def __post_init__(self) -> None:
        # The API validates these with Literal types; this guards the other callers (pages, CLI, tests).
        for name, value, allowed in (("scope", self.scope, SCOPES), ("due", self.due, (None, *DUE_FILTERS)),
                                     ("status", self.status, STATUS_FILTERS), ("kind", self.kind, KIND_FILTERS)):
            if value not in allowed:
                raise ValueError(f"queue filter {name}={value!r}; one of {allowed}")


@dataclass(frozen=True)
class QueueItem:
    intervention: Intervention
    tutor_name: str


@dataclass(frozen=True)
class CaseView:
    intervention: Intervention
    tutor_name: str
    events: list[InterventionEvent] = field(default_factory=list)


def check_scope(scope: str, role: str) -> None:
    if scope == "all" and role not in WIDE_SCOPE_ROLES:
        raise ScopeNotAllowed(f"Only {' and '.join(WIDE_SCOPE_ROLES)} may list every role's queue (scope=all); "
                              f"a {role} lists scope=mine or scope=role.")


def _scope_clause(scope: str, *, user_id: str | None, role: str | None) -> Any:
    if scope == "mine":
        return Intervention.assigned_to == user_id if user_id else false()
    if scope == "role":
        # The owner role's queue, assigned or not, plus what escalated to this role from another one.
        return or_(Intervention.owner_role == role, Intervention.escalated_to_role == role) if role else false()
    return None


def _status_clause(status: str) -> Any:
    if status == "open":
        return Intervention.status.in_([s.value for s in OPEN])
    if status == "needs_approval":
        return Intervention.status == InterventionStatus.needs_approval.value
    return None


def _due_clause(due: str | None, now: datetime) -> Any:
    # Disjoint on purpose: "today" and "week" are what is still to come; overdue work is its own filter.
    if due == "overdue":
        return Intervention.due_date < now
    if due == "today":
        tomorrow = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
        return (Intervention.due_date >= now) & (Intervention.due_date < tomorrow)
    if due == "week":
        return (Intervention.due_date >= now) & (Intervention.due_date < now + timedelta(days=7))
    return None


def queue_conditions(filters: QueueFilters, *, user_id: str | None, role: str | None, now: datetime) -> list[Any]:
    clauses = [
        _scope_clause(filters.scope, user_id=user_id, role=role),
        _status_clause(filters.status),
        _due_clause(filters.due, now),
        Intervention.kind.in_(_KINDS[filters.kind]) if filters.kind != "all" else None,
        Intervention.risk_level.in_(list(filters.risk_levels)) if filters.risk_levels else None,
        Intervention.intervention_type.in_(list(filters.types)) if filters.types else None,
    ]
    return [c for c in clauses if c is not None]


def list_queue(db: Session, filters: QueueFilters, *, user_id: str | None, role: str | None, now: datetime,
               limit: int = 50, offset: int = 0) -> tuple[list[QueueItem], int]:
    """Cases matching ``filters`` as seen by (user_id, role), escalated first, then earliest due; and the total.

    The scope's permission is the caller's to check (check_scope): the home page lists everything it counts.
    """
    where = queue_conditions(filters, user_id=user_id, role=role, now=now)
    total = db.execute(select(func.count()).select_from(Intervention).where(*where)).scalar_one()
    stmt = (
        select(Intervention, Tutor.name).join(Tutor, Tutor.tutor_id == Intervention.tutor_id).where(*where)
        # is_(None) sorts False first: escalated cases lead; cases without a due date go after dated ones.
        .order_by(Intervention.escalated_at.is_(None), Intervention.due_date.is_(None), Intervention.due_date,
                  Intervention.recommended_date, Intervention.intervention_id)
        .limit(limit).offset(offset)
    )
    return [QueueItem(row, name) for row, name in db.execute(stmt)], total


def events_for(db: Session, intervention_ids: Iterable[str]) -> dict[str, list[InterventionEvent]]:
    """Each case's events in the order they happened (revision breaks ties within one instant)."""
    ids = list(dict.fromkeys(intervention_ids))
    out: dict[str, list[InterventionEvent]] = {i: [] for i in ids}
    e = InterventionEvent
    for start in range(0, len(ids), 500):  # bounded IN lists: SQLite caps bound parameters
        stmt = select(e).where(e.intervention_id.in_(ids[start:start + 500])).order_by(e.at, e.revision, e.event_id)
        for event in db.execute(stmt).scalars():
            out[event.intervention_id].append(event)
    return out


def get_case(db: Session, intervention_id: str) -> CaseView | None:
    found = db.execute(select(Intervention, Tutor.name).join(Tutor, Tutor.tutor_id == Intervention.tutor_id)
                       .where(Intervention.intervention_id == intervention_id)).first()
    if found is None:
        return None
    row, name = found
    return CaseView(row, name, events_for(db, [intervention_id])[intervention_id])


def tutor_history(db: Session, tutor_id: str, *, limit: int = 50, offset: int = 0) -> tuple[list[CaseView], int]:
    """Every intervention row of a tutor (cases and their steps), newest recommendation first, with events.

    The caller checks that the tutor exists: an unknown tutor and one never intervened on both give no rows.
    """
    where = Intervention.tutor_id == tutor_id
    total = db.execute(select(func.count()).select_from(Intervention).where(where)).scalar_one()
    stmt = (select(Intervention, Tutor.name).join(Tutor, Tutor.tutor_id == Intervention.tutor_id).where(where)
            .order_by(Intervention.recommended_date.desc(), Intervention.created_at.desc(),
                      Intervention.intervention_id.desc())
            .limit(limit).offset(offset))
    rows = list(db.execute(stmt))
    events = events_for(db, [row.intervention_id for row, _ in rows])
    return [CaseView(row, name, events[row.intervention_id]) for row, name in rows], total
