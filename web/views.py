"""Server-rendered pages for ops and People Ops: Home (KPIs, alerts, live) and the intervention queue.

The queue acts through the same update path as the JSON API (api.routes.queue.run_task_update): every button
is a Temporal Update on the case's workflow, which decides whether the transition is legal and writes the row.
Every route declares its Policy (api.policy): staff only; the one acting is the signed-in account.
"""
from __future__ import annotations

from datetime import datetime
from math import ceil
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.actor import Actor
from api.deps import DbDep, EngineDep, TemporalDep
from api.policy import StaffActor
from api.routes.queue import TaskUpdateRefused, run_task_update
from core.db import session_scope
from core.errors import InputError
from core.types import utcnow
from domain.dashboard import service as dashboard_service
from domain.dashboard.changes import change_token
from domain.interventions import queries
from domain.interventions.models import Intervention, Outcome
from domain.scoring.models import RiskLevel
from domain.users import service as user_service
from web import live
from web.templating import templates
from workflows.inputs import TaskCommand

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
HOME_TASKS = 5
HIGH_ALERTS = 10
ACTIONS = ("claim", "unclaim", "assign", "approve", "complete", "cancel", "extend")
DONE = {"claim": "Claimed", "unclaim": "Returned to the queue", "assign": "Assigned", "approve": "Approved",
        "complete": "Completed", "cancel": "Cancelled", "extend": "Extended"}
BACK_TO_QUEUE = ("/queue", "Back to the queue")


# --- Home and its live parts ------------------------------------------------------------------------------
# Home is three regions, each a template of its own that a partial route renders alone: static/live.js fetches
# them again when the page's event stream (web.live) reports a change, so a region looks the same either way.

def _kpi_context(db: Session, now: datetime) -> dict[str, Any]:
    return {"now": now, "kpis": dashboard_service.kpis(db, now=now)}


def _alert_context(db: Session, now: datetime) -> dict[str, Any]:
    return {
        "now": now,
        "risk_counts": dashboard_service.risk_counts(db, now=now, levels=dashboard_service.AT_RISK),
        "critical": dashboard_service.critical_alerts(db, now=now),
        "high": dashboard_service.critical_alerts(db, now=now, limit=HIGH_ALERTS, levels=(RiskLevel.high,)),
    }


def _task_context(db: Session, now: datetime) -> dict[str, Any]:
    items, open_count = queries.list_queue(db, queries.QueueFilters(scope="all"), user_id=None, role=None, now=now,
                                           limit=HOME_TASKS)
    return {"now": now, "tasks": [(i.intervention, i.tutor_name) for i in items], "open_count": open_count}


HOME_PARTS = {"kpis": _kpi_context, "alerts": _alert_context, "tasks": _task_context}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DbDep, _actor: StaffActor) -> Response:
    now = utcnow()
    # The token first: a change committed while the regions are read is then either in them or still ahead of
    # the token, so the stream reports it and the region is fetched again; it is never lost between the two.
    context: dict[str, Any] = {"active": "home", "now": now, "live_token": change_token(db, now=now)}
    for part in HOME_PARTS.values():
        context.update(part(db, now))
    return templates.TemplateResponse(request, "home.html", context)


def _partial(request: Request, db: Session, part: str) -> Response:
    return templates.TemplateResponse(request, f"_home_{part}.html", HOME_PARTS[part](db, utcnow()),
                                      headers={"Cache-Control": "no-store"})


@router.get("/partials/home/kpis", response_class=HTMLResponse)
def home_kpis(request: Request, db: DbDep, _actor: StaffActor) -> Response:
    return _partial(request, db, "kpis")


@router.get("/partials/home/alerts", response_class=HTMLResponse)
def home_alerts(request: Request, db: DbDep, _actor: StaffActor) -> Response:
    return _partial(request, db, "alerts")


@router.get("/partials/home/tasks", response_class=HTMLResponse)
def home_tasks(request: Request, db: DbDep, _actor: StaffActor) -> Response:
    return _partial(request, db, "tasks")


router.include_router(live.router)  # the stream the partials above are refreshed by


# --- the queue page ---------------------------------------------------------------------------------------

def _choice(value: str | None, allowed: tuple[str, ...] | list[str], default: str | None) -> str | None:
    # A page forgives a stale or hand-edited link by falling back to the default; the JSON API answers 422.
    return value if value in allowed else default


def _view_params(params: dict[str, str]) -> dict[str, Any]:
    """The queue's filters from query parameters (or a form's `back` field), each checked against its choices."""
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    return {
        "scope": _choice(params.get("scope"), queries.SCOPES, "role"),
        "risk": _choice(params.get("risk"), [r.value for r in RiskLevel], None),
        "type": (params.get("type") or "").strip()[:40] or None,
        "due": _choice(params.get("due"), queries.DUE_FILTERS, None),
        "status": _choice(params.get("status"), queries.STATUS_FILTERS, "open"),
        "page": page,
    }


def _query(view: dict[str, Any], **changes: Any) -> str:
    merged = {**view, **changes}
    defaults = {"scope": "role", "status": "open", "page": 1}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "") and defaults.get(k) != v})


def _task_types(db: Session) -> list[str]:
    stmt = (select(Intervention.intervention_type).where(Intervention.kind != "automated").distinct()
            .order_by(Intervention.intervention_type))
    return list(db.execute(stmt).scalars())


def _queue_context(db: Session, *, view: dict[str, Any], actor: Actor, now: datetime) -> dict[str, Any]:
    context: dict[str, Any] = {
        "active": "queue", "now": now, "view": view, "query": _query, "actor": actor,
        "staff": user_service.active_staff(db), "outcomes": list(Outcome), "risks": [r.value for r in RiskLevel],
        "types": _task_types(db), "scopes": queries.SCOPES, "dues": queries.DUE_FILTERS,
        "statuses": queries.STATUS_FILTERS, "tasks": [], "total": 0, "pages": 1, "scope_error": None,
    }
    try:
        queries.check_scope(view["scope"], actor.role)
    except queries.ScopeNotAllowed as exc:
        context["scope_error"] = str(exc)
        return context
    filters = queries.QueueFilters(scope=view["scope"], risk_levels=[view["risk"]] if view["risk"] else (),
                                   types=[view["type"]] if view["type"] else (), due=view["due"],
                                   status=view["status"])
    items, total = queries.list_queue(db, filters, user_id=actor.user_id, role=actor.role, now=now,
                                      limit=PAGE_SIZE, offset=(view["page"] - 1) * PAGE_SIZE)
    context.update(tasks=[(i.intervention, i.tutor_name) for i in items], total=total,
                   pages=max(1, ceil(total / PAGE_SIZE)))
    return context


def _queue_context_in_thread(engine: Engine, **kwargs: Any) -> dict[str, Any]:
    with session_scope(engine) as db:
        return _queue_context(db, **kwargs)


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, db: DbDep, actor: StaffActor) -> Response:
    view = _view_params(dict(request.query_params))
    context = _queue_context(db, view=view, actor=actor, now=utcnow())
    done_id, did = request.query_params.get("done"), request.query_params.get("did")
    context.update(done=done_id, did=DONE.get(did or ""))
    status = 403 if context["scope_error"] else 200
    return templates.TemplateResponse(request, "queue.html", context, status_code=status)


def _command(actor: Actor, action: str, form: dict[str, str]) -> tuple[TaskCommand | None, str | None]:
    """The Update's argument from the row's form, or the message to show on the row when the form is incomplete."""
    notes = form.get("notes", "").strip() or None
    if notes and len(notes) > 4000:
        return None, "Notes are limited to 4000 characters."
    cmd = TaskCommand(actor=actor.user_id, actor_role=actor.role, notes=notes)
    if action == "complete":
        if form.get("outcome") not in {o.value for o in Outcome}:
            choices = ", ".join(dashboard_service.title_words(o).lower() for o in Outcome)
            return None, f"Choose an outcome ({choices}) before completing the task."
        cmd.outcome = form["outcome"]
    elif action == "assign":
        if not form.get("assignee"):
            return None, "Choose who to assign the task to."
        cmd.assignee = form["assignee"]
    elif action == "cancel":
        reason = form.get("reason", "").strip()
        if not reason or len(reason) > 500:
            return None, "Say why the task is cancelled (up to 500 characters)."
        cmd.reason = reason
    elif action == "extend":
        try:
            days = float(form.get("extend_days", ""))
        except ValueError:
            days = 0.0
        if not 0 < days <= 365:
            return None, "Give the number of days to extend by (more than 0)."
        cmd.extend_days = days
    return cmd, None


@router.post("/queue/{intervention_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, intervention_id: str, action: str, engine: EngineDep, client: TemporalDep,
              actor: StaffActor) -> Response:
    # The Policy read this form already (its CSRF field); Starlette hands back the parsed copy.
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    view = _view_params(dict(parse_qsl(form.get("back", ""))))
    now = utcnow()

    async def page_with(message: str, status: int) -> Response:
        context = await run_in_threadpool(_queue_context_in_thread, engine, view=view, actor=actor, now=now)
        shown = any(row.intervention_id == intervention_id for row, _ in context["tasks"])
        context.update(error=message, error_for=intervention_id if shown else None, kept=form, done=None, did=None)
        return templates.TemplateResponse(request, "queue.html", context, status_code=status)

    if action not in ACTIONS:
        return templates.TemplateResponse(request, "error.html", {
            "status": 404, "message": f"There is no {action!r} action on a task.", "active": "queue",
            "back": BACK_TO_QUEUE}, status_code=404)
    cmd, problem = _command(actor, action, form)
    if cmd is None:
        return await page_with(problem or "", 422)
    try:
        await run_task_update(engine, client, intervention_id, action, cmd)
    except InputError as exc:
        return await page_with("; ".join(e["msg"] for e in exc.errors), 422)
    except TaskUpdateRefused as exc:
        if exc.status_code == 404:
            return templates.TemplateResponse(request, "error.html", {
                "status": 404, "message": exc.message, "active": "queue", "back": BACK_TO_QUEUE}, status_code=404)
        return await page_with(exc.message, exc.status_code)
    # The Update returned after the workflow wrote the row, so the page after the redirect shows the change.
    return RedirectResponse(f"/queue?{_query(view, done=intervention_id, did=action)}", status_code=303)

