"""Interventions and KPIs as JSON. Completing a task only signals its workflow; the workflow writes the row."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import DbDep, EngineDep, TemporalDep
from core.db import session_scope
from core.temporal import signal_task_completed
from core.types import utcnow
from domain.dashboard import service as dashboard_service
from domain.interventions import service as intervention_service
from domain.interventions.models import CompleteTask, Intervention
from workflows.inputs import CompleteTaskSignal

router = APIRouter(tags=["interventions"])


class InterventionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    intervention_id: str
    tutor_id: str
    tutor_name: str
    intervention_type: str
    kind: str
    trigger_reason: str
    recommended_date: datetime
    owner_role: str | None
    assigned_to: str | None
    status: str
    due_date: datetime | None
    escalated_at: datetime | None
    escalated_to_role: str | None
    completed_date: datetime | None
    outcome: str | None
    notes: str | None
    rules_version: str
    matched_rules: list[str]


class InterventionPage(BaseModel):
    items: list[InterventionRead]
    total: int
    limit: int
    offset: int


class CompletionAccepted(BaseModel):
    intervention_id: str
    status: Literal["completion_signalled"] = "completion_signalled"


class KpiReport(BaseModel):
    as_of: datetime
    days: int  # the period length; each KPI's change compares with the same length before it
    kpis: list[dashboard_service.Kpi]


class CompletionRefused(Exception):
    """Why a completion was not sent; the JSON route and the queue page each render it their own way."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message


def _check_open(engine: Engine, intervention_id: str) -> None:
    with session_scope(engine) as db:
        row = db.get(Intervention, intervention_id)
        if row is None:
            raise CompletionRefused(404, f"No intervention {intervention_id}.")
        if row.kind != "human":
            raise CompletionRefused(409, f"{intervention_id} is automated; it completes on its own.")
        if row.status not in intervention_service.OPEN:
            raise CompletionRefused(409, f"{intervention_id} is already {row.status}.")


async def request_completion(engine: Engine, client: Client | None, intervention_id: str, task: CompleteTask) -> None:
    """Signal the task's workflow to complete it, or raise CompletionRefused; never writes the row itself.

    The status check only gives a clear message: Temporal refuses a signal to a closed workflow (NOT_FOUND)
    and a second completion of an open row is a no-op in intervention_service.complete, so a race between
    this check and the signal cannot complete a task twice.
    """
    await run_in_threadpool(_check_open, engine, intervention_id)
    if client is None:
        raise CompletionRefused(503, "Temporal is unreachable, so the completion was not sent. Nothing changed; try again shortly.")
    signal = CompleteTaskSignal(outcome=str(task.outcome), notes=task.notes, completed_by=task.completed_by)
    try:
        await signal_task_completed(client, intervention_id, signal)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CompletionRefused(409, f"{intervention_id} has no running workflow; it may have just closed.") from None
        raise CompletionRefused(503, f"Temporal refused the completion ({exc.status.name}). Nothing changed.") from None


@router.get("/interventions", response_model=InterventionPage, summary="Interventions, most urgent first")
def list_interventions(
    db: DbDep,
    status: Literal["open", "all"] = "open",
    kind: Literal["human", "automated", "all"] = "all",
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> InterventionPage:
    rows, total = intervention_service.list_tasks(
        db, open_only=status == "open", kind=None if kind == "all" else kind, limit=limit, offset=offset
    )
    items = [InterventionRead.model_validate({**row.model_dump(), "tutor_name": name}) for row, name in rows]
    return InterventionPage(items=items, total=total, limit=limit, offset=offset)


@router.post(
    "/interventions/{intervention_id}/complete", status_code=202, response_model=CompletionAccepted,
    summary="Complete a human task (signals its workflow, which records the outcome)",
    responses={404: {"description": "Unknown intervention"}, 409: {"description": "Not open, or not a human task"},
               503: {"description": "Temporal unreachable; nothing changed"}},
)
async def complete_intervention(intervention_id: str, task: CompleteTask, engine: EngineDep,
                                client: TemporalDep) -> CompletionAccepted:
    try:
        await request_completion(engine, client, intervention_id, task)
    except CompletionRefused as exc:
        raise HTTPException(status_code=exc.status_code, detail=exc.message) from None
    return CompletionAccepted(intervention_id=intervention_id)


@router.get("/kpis", response_model=KpiReport, tags=["dashboard"],
            summary="System KPIs over the last `days` days, each with its change vs. the period before")
def get_kpis(db: DbDep, as_of: AwareDatetime | None = None,
             days: int = Query(30, ge=7, le=90, description="Period length in days")) -> KpiReport:
    # Prediction days and KPI windows are UTC days; a caller's offset must not shift them.
    now = as_of.astimezone(UTC) if as_of else utcnow()
    return KpiReport(as_of=now, days=days, kpis=dashboard_service.kpis(db, now=now, days=days))
