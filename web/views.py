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

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.actor import Actor
from api.deps import DbDep, EngineDep, SettingsDep, TemporalDep
from api.policy import StaffActor
from api.routes.queue import TaskUpdateRefused, run_task_update
from core.config import Settings
from core.db import session_scope
from core.errors import InputError, field_error
from core.types import utcnow
from domain.dashboard import service as dashboard_service
from domain.dashboard.changes import change_token
from domain.interventions import queries
from domain.interventions.models import OPEN, Intervention, Outcome
from domain.scoring.models import RiskLevel
from domain.tutors.service import tier_window
from domain.users import service as user_service
from rules.scoring import TIERS
from web import live
from web.export import csv_response
from web.templating import templates
from workflows.inputs import TaskCommand
from workflows.task_state import MANAGERS

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

HOME_FILTERS = ("risk", "tier", "subject")
TREND_DAYS = 30


def _home_view(db: Session, params: Any, settings: Settings) -> dict[str, Any]:
    """Home's alert filters from the query string; a stale or hand-edited value falls back to "any"."""
    subjects = dashboard_service.known_subjects(db)
    return {
        "risk": _choice(params.get("risk"), [r.value for r in RiskLevel], None),
        "tier": _choice(params.get("tier"), list(TIERS), None),
        "subject": _choice(params.get("subject"), subjects, None),
        "subjects": subjects,
        "tier_window": tier_window(settings),
    }


def _scope(view: dict[str, Any]) -> dashboard_service.AlertScope:
    return dashboard_service.AlertScope(tier=view["tier"], subject=view["subject"], tier_window=view["tier_window"])


def _home_query(view: dict[str, Any]) -> str:
    return urlencode({k: view[k] for k in HOME_FILTERS if view.get(k)})


def _kpi_context(db: Session, now: datetime, _view: dict[str, Any], _actor: Actor) -> dict[str, Any]:
    return {"now": now, "kpis": dashboard_service.kpis(db, now=now)}


def _alert_context(db: Session, now: datetime, view: dict[str, Any], actor: Actor) -> dict[str, Any]:
    scope = _scope(view)
    if view["risk"]:  # one level asked for: one list of it
        levels = [RiskLevel(view["risk"])]
        sections = [(view["risk"], dashboard_service.critical_alerts(db, now=now, levels=levels, scope=scope))]
    else:
        sections = [
            ("Critical", dashboard_service.critical_alerts(db, now=now, scope=scope)),
            ("High", dashboard_service.critical_alerts(db, now=now, limit=HIGH_ALERTS, levels=(RiskLevel.high,),
                                                       scope=scope)),
        ]
    staff = user_service.active_staff(db)
    load = dashboard_service.open_task_load(db)
    # One-click assignment suggests the people-ops teammate with the fewest open tasks (then by name).
    team = [u for u in staff if u.role == "people_ops" and u.user_id != actor.user_id]
    teammate = min(team, key=lambda u: (load.get(u.user_id, 0), u.name.lower(), u.user_id), default=None)
    return {
        "now": now, "sections": sections, "home_view": view, "home_query": _home_query(view),
        "risk_counts": dashboard_service.risk_counts(db, now=now, scope=scope),
        "teammate": teammate, "manager": actor.role in MANAGERS, "actor": actor,
    }


def _task_context(db: Session, now: datetime, _view: dict[str, Any], _actor: Actor) -> dict[str, Any]:
    items, open_count = queries.list_queue(db, queries.QueueFilters(scope="all"), user_id=None, role=None, now=now,
                                           limit=HOME_TASKS)
    return {"now": now, "tasks": [(i.intervention, i.tutor_name) for i in items], "open_count": open_count}


HOME_PARTS = {"kpis": _kpi_context, "alerts": _alert_context, "tasks": _task_context}


def _trend_chart(db: Session, now: datetime, view: dict[str, Any]) -> dict[str, Any]:
    """The 30-day risk distribution: a Chart.js line per level (static/charts.js) and the same rows as a table."""
    rows = dashboard_service.risk_trend(db, now=now, days=TREND_DAYS, scope=_scope(view))
    levels = [r.value for r in (RiskLevel.critical, RiskLevel.high, RiskLevel.medium, RiskLevel.low)]
    colours = {"Critical": "#b3261e", "High": "#c25e00", "Medium": "#8a6d00", "Low": "#2e7d32"}
    config = {"type": "line", "data": {
        "labels": [day.isoformat() for day, _ in rows],
        "datasets": [{"label": level, "data": [counts.get(level, 0) for _, counts in rows],
                      "borderColor": colours[level], "backgroundColor": colours[level], "tension": 0.2}
                     for level in levels]},
        "options": {"scales": {"y": {"beginAtZero": True, "title": {"display": True, "text": "Tutors"}}}}}
    return {"trend_rows": rows, "trend_levels": levels, "trend_config": config, "trend_days": TREND_DAYS}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DbDep, settings: SettingsDep, actor: StaffActor) -> Response:
    now = utcnow()
    view = _home_view(db, request.query_params, settings)
    # The token first: a change committed while the regions are read is then either in them or still ahead of
    # the token, so the stream reports it and the region is fetched again; it is never lost between the two.
    context: dict[str, Any] = {"active": "home", "now": now, "live_token": change_token(db, now=now),
                               "tiers": TIERS, "risks": [r.value for r in RiskLevel],
                               "done": _home_done(db, request.query_params)}
    for part in HOME_PARTS.values():
        context.update(part(db, now, view, actor))
    context.update(_trend_chart(db, now, view))
    return templates.TemplateResponse(request, "home.html", context)


def _home_done(db: Session, params: Any) -> str | None:
    """The confirmation after a one-click assignment from Home (the task's name, from the database, not the URL)."""
    did, done_id = DONE.get(params.get("did") or ""), params.get("done")
    row = db.get(Intervention, done_id) if did and done_id else None
    return f"{did}: {row.title or dashboard_service.title_words(row.intervention_type)}" if row else None


def _partial(request: Request, db: Session, settings: Settings, actor: Actor, part: str) -> Response:
    view = _home_view(db, request.query_params, settings)
    return templates.TemplateResponse(request, f"_home_{part}.html", HOME_PARTS[part](db, utcnow(), view, actor),
                                      headers={"Cache-Control": "no-store"})


@router.get("/partials/home/kpis", response_class=HTMLResponse)
def home_kpis(request: Request, db: DbDep, settings: SettingsDep, actor: StaffActor) -> Response:
    return _partial(request, db, settings, actor, "kpis")


@router.get("/partials/home/alerts", response_class=HTMLResponse)
def home_alerts(request: Request, db: DbDep, settings: SettingsDep, actor: StaffActor) -> Response:
    return _partial(request, db, settings, actor, "alerts")


@router.get("/partials/home/tasks", response_class=HTMLResponse)
def home_tasks(request: Request, db: DbDep, settings: SettingsDep, actor: StaffActor) -> Response:
    return _partial(request, db, settings, actor, "tasks")


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


def _filters(view: dict[str, Any]) -> queries.QueueFilters:
    """The query's filters from the page's view (the page and its CSV list the same tasks)."""
    return queries.QueueFilters(scope=view["scope"], risk_levels=[view["risk"]] if view["risk"] else (),
                                types=[view["type"]] if view["type"] else (), due=view["due"], status=view["status"])


def _queue_context(db: Session, *, view: dict[str, Any], actor: Actor, now: datetime) -> dict[str, Any]:
    context: dict[str, Any] = {
        "active": "queue", "now": now, "view": view, "query": _query, "actor": actor, "managers": MANAGERS,
        "staff": user_service.active_staff(db), "outcomes": list(Outcome), "risks": [r.value for r in RiskLevel],
        "types": _task_types(db), "scopes": queries.SCOPES, "dues": queries.DUE_FILTERS,
        "statuses": queries.STATUS_FILTERS, "tasks": [], "total": 0, "pages": 1, "scope_error": None,
    }
    try:
        queries.check_scope(view["scope"], actor.role)
    except queries.ScopeNotAllowed as exc:
        context["scope_error"] = str(exc)
        return context
    filters = _filters(view)
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
    now = utcnow()
    live_token = change_token(db, now=now)  # before the rows, as on Home: a change meanwhile is never lost
    context = _queue_context(db, view=view, actor=actor, now=now)
    context["live_token"] = live_token
    done_id, did = request.query_params.get("done"), request.query_params.get("did")
    context.update(done=done_id, did=DONE.get(did or ""))
    status = 403 if context["scope_error"] else 200
    return templates.TemplateResponse(request, "queue.html", context, status_code=status)


# The queue as CSV: the page's filters, every page of them. A download refuses (422, naming the field) what the
# page quietly resets: a script must not receive another filter's tasks than it asked for.
QUEUE_CSV_LIMIT = 10_000
QUEUE_CSV_CHOICES = {"scope": queries.SCOPES, "risk": tuple(r.value for r in RiskLevel), "due": queries.DUE_FILTERS,
                     "status": queries.STATUS_FILTERS}
QUEUE_CSV_COLUMNS = ["Tutor id", "Tutor", "Risk level", "Churn score", "Task", "Type", "Kind", "Step", "Status",
                     "Outcome", "Owner role", "Assigned to", "Recommended", "Due", "Overdue", "Escalated at",
                     "Escalated to", "Trigger reason", "Intervention id"]


@router.get("/queue.csv")
def queue_csv(request: Request, db: DbDep, actor: StaffActor) -> Response:
    params = dict(request.query_params)
    view = _view_params(params)
    wrong = [k for k in QUEUE_CSV_CHOICES if params.get(k) and params[k] != view[k]]
    if wrong:
        raise InputError([field_error(["query", k], f"one of {', '.join(QUEUE_CSV_CHOICES[k])}") for k in wrong])
    try:
        queries.check_scope(view["scope"], actor.role)
    except queries.ScopeNotAllowed as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    now = utcnow()
    filters = _filters(view)
    items, _total = queries.list_queue(db, filters, user_id=actor.user_id, role=actor.role, now=now,
                                       limit=QUEUE_CSV_LIMIT)
    rows: list[list[object]] = [QUEUE_CSV_COLUMNS]
    for item in items:  # plain values now: the session closes before the response streams
        r = item.intervention
        open_ = r.status in OPEN
        rows.append([r.tutor_id, item.tutor_name, r.risk_level, r.churn_score, r.title or r.intervention_type,
                     r.intervention_type, r.kind, r.step, r.status, r.outcome, r.owner_role, r.assigned_to,
                     r.recommended_date, r.due_date, open_ and r.due_date is not None and r.due_date < now,
                     r.escalated_at, r.escalated_to_role, r.trigger_reason, r.intervention_id])
    return csv_response(rows, stem="queue")


@router.get("/partials/queue", response_class=HTMLResponse)
def queue_tasks(request: Request, db: DbDep, actor: StaffActor) -> Response:
    """The queue page's task table alone, for static/live.js to swap in when the change stream reports a change."""
    context = _queue_context(db, view=_view_params(dict(request.query_params)), actor=actor, now=utcnow())
    return templates.TemplateResponse(request, "_queue_tasks.html", context, headers={"Cache-Control": "no-store"},
                                      status_code=403 if context["scope_error"] else 200)


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
    if form.get("return_to") == "home":  # Home's one-click assignment: back to Home, its filters kept
        home_query = urlencode({**dict(parse_qsl(form.get("home", ""))), "done": intervention_id, "did": action})
        return RedirectResponse(f"/?{home_query}", status_code=303)
    return RedirectResponse(f"/queue?{_query(view, done=intervention_id, did=action)}", status_code=303)

