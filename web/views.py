"""Server-rendered pages for ops and People Ops: Home (KPIs, alerts) and the intervention queue."""
from __future__ import annotations

from datetime import datetime, timedelta
from math import ceil
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.deps import DbDep, EngineDep, TemporalDep
from api.routes.interventions import CompletionRefused, request_completion
from core.db import session_scope
from core.types import utcnow
from domain.dashboard import service as dashboard_service
from domain.interventions import service as intervention_service
from domain.interventions.models import CompleteTask, Outcome
from domain.scoring.models import RiskLevel

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
HOME_TASKS = 5
HIGH_ALERTS = 10


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600:.0f} hours"
    return f"{max(1, seconds // 60):.0f} min"


def _due(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "no due date"
    return f"overdue by {_span(now - value)}" if value < now else f"due in {_span(value - now)}"


templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
templates.env.filters["words"] = dashboard_service.title_words
templates.env.filters["when"] = _when
templates.env.globals["due"] = _due


def _queue_context(db: Session, *, page: int, now: datetime) -> dict[str, Any]:
    rows, total = intervention_service.list_tasks(db, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return {
        "tasks": rows, "total": total, "page": page, "pages": max(1, ceil(total / PAGE_SIZE)), "now": now,
        "outcomes": list(Outcome), "active": "queue",
    }


def _queue_context_in_thread(engine: Engine, *, page: int, now: datetime) -> dict[str, Any]:
    with session_scope(engine) as db:
        return _queue_context(db, page=page, now=now)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DbDep) -> Response:
    now = utcnow()
    tasks, open_count = intervention_service.list_tasks(db, limit=HOME_TASKS)
    return templates.TemplateResponse(request, "home.html", {
        "now": now,
        "active": "home",
        "kpis": dashboard_service.kpis(db, now=now),
        "risk_counts": dashboard_service.risk_counts(db, now=now, levels=dashboard_service.AT_RISK),
        "critical": dashboard_service.critical_alerts(db, now=now),
        "high": dashboard_service.critical_alerts(db, now=now, limit=HIGH_ALERTS, levels=(RiskLevel.high,)),
        "tasks": tasks,
        "open_count": open_count,
    })


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, db: DbDep, page: int = 1, completed: str | None = None) -> Response:
    context = _queue_context(db, page=max(page, 1), now=utcnow())
    return templates.TemplateResponse(request, "queue.html", {**context, "completed": completed})


def _form_error(exc: ValidationError) -> str:
    fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    if "outcome" in fields:
        choices = ", ".join(dashboard_service.title_words(o).lower() for o in Outcome)
        return f"Choose an outcome ({choices}) before completing the task."
    return "Notes are limited to 4000 characters."


@router.post("/queue/{intervention_id}/complete", response_class=HTMLResponse)
async def complete_task(
    request: Request,
    intervention_id: str,
    engine: EngineDep,
    client: TemporalDep,
    outcome: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
    page: Annotated[int, Form()] = 1,
) -> Response:
    page = max(page, 1)
    try:
        task = CompleteTask(outcome=outcome, notes=notes.strip() or None)
    except ValidationError as exc:
        context = await run_in_threadpool(_queue_context_in_thread, engine, page=page, now=utcnow())
        return templates.TemplateResponse(request, "queue.html", {
            **context, "error": _form_error(exc), "error_for": intervention_id, "kept_notes": notes,
        }, status_code=422)
    try:
        await request_completion(engine, client, intervention_id, task)
    except CompletionRefused as exc:
        return templates.TemplateResponse(request, "error.html", {
            "status": exc.status_code, "message": exc.message, "active": "queue",
        }, status_code=exc.status_code)
    query = urlencode({"completed": intervention_id, **({"page": page} if page > 1 else {})})
    return RedirectResponse(f"/queue?{query}", status_code=303)
