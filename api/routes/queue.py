"""The intervention queue as JSON: list (mine / my role / all), one case with its events, the task actions, and a
tutor's intervention history.

Actions never write a row here. Each becomes a Temporal Update on the case's workflow (its id is the
intervention id): the workflow's validator refuses an illegal transition with a reason (409 here), otherwise the
workflow writes the row and its event through an activity, and the route re-reads the row to answer.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.actor import Actor
from api.deps import DbDep, EngineDep, TemporalDep
from api.params import Offset
from api.policy import StaffActor as StaffDep
from api.schemas.queue import (
    AssignBody, CancelBody, CaseRead, CompleteBody, DueFilter, EventRead, ExtendBody, InterventionRow, KindFilter,
    NoteBody, QueuePage, Scope, StatusFilter, TaskUpdateResult, TaskViewRead, TutorInterventions,
)
from core.db import session_scope
from core.errors import InputError, field_error
from core.temporal import update_task
from core.types import utcnow
from domain.interventions import queries
from domain.interventions.models import OPEN, Intervention
from domain.scoring.models import RiskLevel
from domain.tutors import service as tutor_service
from domain.users import service as user_service
from workflows.inputs import TaskCommand, TaskView

router = APIRouter(tags=["queue"])

Limit = Annotated[int, Query(ge=1, le=200)]
WHO = {401: {"description": "Not signed in: no bearer token, or an unknown, expired or revoked one"},
       403: {"description": "Not a staff user, or a scope the role may not list"}}
ACTION = {**WHO, 404: {"description": "Unknown intervention"},
          409: {"description": "The workflow refused the transition (the detail says why), or it is closed"},
          422: {"description": "Invalid body; the detail names the field"},
          503: {"description": "Temporal unreachable; nothing changed"},
          504: {"description": "Temporal did not answer in time; reload the case to see whether it applied"}}
SCOPE_HELP = ("mine: assigned to me; role: my role's queue, assigned or not, and what escalated to it; "
              "all: every role (ops_manager and admin only)")
DUE_HELP = "overdue: past due; today: due before midnight UTC; week: due within 7 days (neither includes overdue)"


# --- reading ----------------------------------------------------------------------------------------------

def row_read(row: Intervention, tutor_name: str, now: datetime) -> InterventionRow:
    overdue = row.due_date is not None and row.due_date < now and row.status in OPEN
    return InterventionRow.model_validate({**row.model_dump(), "tutor_name": tutor_name, "overdue": overdue})


def case_read(case: queries.CaseView, now: datetime) -> CaseRead:
    row = row_read(case.intervention, case.tutor_name, now)
    return CaseRead(**row.model_dump(), events=[EventRead.model_validate(e) for e in case.events])


def _scope_allowed(scope: str, actor: Actor) -> None:
    try:
        queries.check_scope(scope, actor.role)
    except queries.ScopeNotAllowed as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None


@router.get("/queue", response_model=QueuePage, responses=WHO,
            summary="Open intervention tasks for the caller: escalated first, then by due date")
def list_queue(
    db: DbDep,
    actor: StaffDep,
    scope: Scope = Query("role", description=SCOPE_HELP),  # type: ignore[valid-type]
    risk: list[RiskLevel] | None = Query(None, description="Risk level at recommendation; repeat for several"),
    types: list[str] | None = Query(None, alias="type", description="Intervention type; repeat for several"),
    due: DueFilter | None = Query(None, description=DUE_HELP),  # type: ignore[valid-type]
    status: StatusFilter = Query("open", description="open: needs_approval, pending or in_progress"),  # type: ignore[valid-type]
    kind: KindFilter = Query("tasks", description="tasks: human tasks and programs"),  # type: ignore[valid-type]
    limit: Limit = 50,
    offset: Offset = 0,
) -> QueuePage:
    _scope_allowed(scope, actor)
    now = utcnow()
    filters = queries.QueueFilters(scope=scope, risk_levels=[str(r) for r in risk or ()], types=types or (),
                                   due=due, status=status, kind=kind)
    items, total = queries.list_queue(db, filters, user_id=actor.user_id, role=actor.role, now=now,
                                      limit=limit, offset=offset)
    return QueuePage(scope=scope, items=[row_read(i.intervention, i.tutor_name, now) for i in items],
                     total=total, limit=limit, offset=offset)


@router.get("/queue/{intervention_id}", response_model=CaseRead,
            responses={**WHO, 404: {"description": "Unknown intervention"}}, summary="One case with every change")
def get_case(intervention_id: str, db: DbDep, _actor: StaffDep) -> CaseRead:
    case = queries.get_case(db, intervention_id)
    if case is None:
        raise HTTPException(status_code=404, detail=f"No intervention {intervention_id}.")
    return case_read(case, utcnow())


@router.get("/tutors/{tutor_id}/interventions", response_model=TutorInterventions, tags=["tutors"],
            responses={**WHO, 404: {"description": "Unknown tutor"}},
            summary="A tutor's intervention history: every case and step, newest first, with their events")
def tutor_interventions(tutor_id: str, db: DbDep, _actor: StaffDep, limit: Limit = 50,
                        offset: Offset = 0) -> TutorInterventions:
    try:
        tutor_service.require_tutor(db, tutor_id)
    except tutor_service.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    cases, total = queries.tutor_history(db, tutor_id, limit=limit, offset=offset)
    now = utcnow()
    return TutorInterventions(tutor_id=tutor_id, items=[case_read(c, now) for c in cases], total=total,
                              limit=limit, offset=offset)


# --- acting: the one update path, shared with the queue page ----------------------------------------------

class TaskUpdateRefused(Exception):
    """Why an action did not happen; the JSON routes and the queue page each render it their own way."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message


def _existing(engine: Engine, intervention_id: str) -> tuple[str, str]:
    """(status, kind) of the case, for the messages; 404 when there is no such case."""
    with session_scope(engine) as db:
        row = db.get(Intervention, intervention_id)
        if row is None:
            raise TaskUpdateRefused(404, f"No intervention {intervention_id}.")
        return row.status, row.kind


def check_assignee(engine: Engine, assignee: str) -> None:
    """An assignee must be an active staff user: input the API can check itself, so a 422 naming the field."""
    with session_scope(engine) as db:
        user = user_service.active_user(db, assignee)
        if user is None or not user_service.is_staff(user.role):
            raise InputError([field_error(["body", "assignee"], f"{assignee!r} is not an active staff user",
                                          "value_error.assignee")])


def _refusal_reason(exc: WorkflowUpdateFailedError, update: str, kind: str) -> str:
    cause = exc.cause
    message = cause.message if isinstance(cause, ApplicationError) and cause.message else str(cause or exc)
    if "expected but not found" in message:
        # The SDK's words for an Update the workflow does not define (a program has no claim, for one).
        return f"'{update}' does not apply to {'an' if kind[:1] in 'aeiou' else 'a'} {kind} case; nothing changed."
    return message


async def run_task_update(engine: Engine, client: Client | None, intervention_id: str, update: str,
                          cmd: TaskCommand) -> TaskView:
    """Sends one Update to the case's workflow and returns its new state, or raises TaskUpdateRefused.

    The row lookup gives 404 for an unknown id and a plain message when the workflow is gone, and an unknown
    assignee is refused as input (InputError, 422); whether the transition is legal is the workflow's decision
    alone (its validator runs before anything is written).
    """
    status, kind = await run_in_threadpool(_existing, engine, intervention_id)
    if cmd.assignee is not None:
        await run_in_threadpool(check_assignee, engine, cmd.assignee)
    if client is None:
        raise TaskUpdateRefused(503, f"Temporal is unreachable, so the {update} was not sent. "
                                     "Nothing changed; try again shortly.")
    try:
        return await update_task(client, intervention_id, update, cmd)
    except WorkflowUpdateFailedError as exc:
        raise TaskUpdateRefused(409, _refusal_reason(exc, update, kind)) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise TaskUpdateRefused(504, f"Temporal did not confirm the {update} in time; it may still apply. "
                                     "Reload the case to see its state.") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            closed = f" (it is {status})" if status in queries.CLOSED_STATUSES else ""
            raise TaskUpdateRefused(409, f"{intervention_id} has no running workflow{closed}; "
                                         "nothing changed.") from None
        raise TaskUpdateRefused(503, f"Temporal refused the {update} ({exc.status.name}). Nothing changed.") from None


def _reread(engine: Engine, intervention_id: str) -> queries.CaseView | None:
    with session_scope(engine) as db:
        return queries.get_case(db, intervention_id)


async def _act(engine: Engine, client: Client | None, intervention_id: str, update: str,
               cmd: TaskCommand) -> TaskUpdateResult:
    try:
        view = await run_task_update(engine, client, intervention_id, update, cmd)
    except TaskUpdateRefused as exc:
        raise HTTPException(status_code=exc.status_code, detail=exc.message) from None
    # Every task Update returns only after its workflow has written the new state, so this read sees it.
    case = await run_in_threadpool(_reread, engine, intervention_id)
    if case is None:  # deleted between the Update and the read: nothing in the product deletes cases
        raise HTTPException(status_code=404, detail=f"No intervention {intervention_id}.")
    return TaskUpdateResult(update=update, task=TaskViewRead.model_validate(view), intervention=case_read(case, utcnow()))


def _command(actor: Actor, **fields: object) -> TaskCommand:
    return TaskCommand(actor=actor.user_id, actor_role=actor.role, **fields)  # type: ignore[arg-type]


@router.post("/queue/{intervention_id}/claim", response_model=TaskUpdateResult, responses=ACTION,
             summary="Take the task: it is assigned to the caller and moves to in progress")
async def claim(intervention_id: str, actor: StaffDep, engine: EngineDep, client: TemporalDep,
                body: NoteBody | None = None) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "claim", _command(actor, notes=body and body.notes))


@router.post("/queue/{intervention_id}/unclaim", response_model=TaskUpdateResult, responses=ACTION,
             summary="Give the task back to its role's queue")
async def unclaim(intervention_id: str, actor: StaffDep, engine: EngineDep, client: TemporalDep,
                  body: NoteBody | None = None) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "unclaim", _command(actor, notes=body and body.notes))


@router.post("/queue/{intervention_id}/assign", response_model=TaskUpdateResult, responses=ACTION,
             summary="Assign the task to a staff user")
async def assign(intervention_id: str, body: AssignBody, actor: StaffDep, engine: EngineDep,
                 client: TemporalDep) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "assign",
                      _command(actor, assignee=body.assignee, notes=body.notes))


@router.post("/queue/{intervention_id}/approve", response_model=TaskUpdateResult, responses=ACTION,
             summary="Approve a task that needs a manager's approval before anyone works it")
async def approve(intervention_id: str, actor: StaffDep, engine: EngineDep, client: TemporalDep,
                  body: NoteBody | None = None) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "approve", _command(actor, notes=body and body.notes))


@router.post("/queue/{intervention_id}/complete", response_model=TaskUpdateResult, responses=ACTION,
             summary="Record the outcome and close the task")
async def complete(intervention_id: str, body: CompleteBody, actor: StaffDep, engine: EngineDep,
                   client: TemporalDep) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "complete",
                      _command(actor, outcome=body.outcome.value, notes=body.notes))


@router.post("/queue/{intervention_id}/cancel", response_model=TaskUpdateResult, responses=ACTION,
             summary="Cancel the task, saying why")
async def cancel(intervention_id: str, body: CancelBody, actor: StaffDep, engine: EngineDep,
                 client: TemporalDep) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "cancel", _command(actor, reason=body.reason))


@router.post("/queue/{intervention_id}/extend", response_model=TaskUpdateResult, responses=ACTION,
             summary="Extend a program (H3 PIP up to its maximum duration)")
async def extend(intervention_id: str, body: ExtendBody, actor: StaffDep, engine: EngineDep,
                 client: TemporalDep) -> TaskUpdateResult:
    return await _act(engine, client, intervention_id, "extend",
                      _command(actor, extend_days=body.extend_days, notes=body.notes))
