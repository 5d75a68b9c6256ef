"""The tutor profile deep dive (PRD UI 1.2) at /tutors/{tutor_id}: risk and its reasons, 30-day metrics against
their thresholds, flags, drill-down charts, intervention history, feedback, the message log and manager notes,
with forms to add a note and to start an intervention.

Staff only. Every route declares STAFF (its audit row: tutor risk data) and FEEDBACK_READERS (a second audit row:
the page shows student feedback, a student-data read). An intervention is started as its workflow, the same way
the rules start one (domain.dashboard.profile_interventions); nothing here writes a case row before Temporal has
accepted the start.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.actor import Actor
from api.deps import DbDep, EngineDep, SettingsDep, TemporalDep
from api.policy import STAFF_ROLES, Policy, StaffActor
from core.config import Settings
from core.db import session_scope
from core.errors import InputError
from core.types import utcnow
from domain.dashboard import profile as profile_service
from domain.dashboard import profile_interventions as manual
from domain.interventions import queries
from domain.rulesets import service as ruleset_service
from domain.tutors import notes as notes_service
from domain.tutors import service as tutor_service
from rules.scoring import active_scoring_rules
from web import export, pdf
from web import profile_exports as exports
from web.profile_charts import charts
from web.templating import templates

router = APIRouter(include_in_schema=False)
FEEDBACK_READERS = Policy(*STAFF_ROLES, name="staff (student feedback)", audit="student_data")
FeedbackReader = Annotated[Actor, Depends(FEEDBACK_READERS)]
DONE = {"note": "Note added.", "intervention": "Intervention started: {case}.",
        "already": "That intervention was started already: {case}. Nothing new was created."}
EXPORT_LIMIT = 10_000  # a whole tutor's history: a few hundred rows after years of daily evaluations


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "at an unknown time"
    days = (now - value).days
    return "today" if days <= 0 else "yesterday" if days == 1 else f"{days} days ago"


def _context(db: Session, settings: Settings, tutor_id: str, *, now: datetime, **extra: Any) -> dict[str, Any]:
    """The page's context; raises tutor_service.NotFound."""
    data = profile_service.profile(db, tutor_id, now=now, rules_dir=settings.rules_dir)
    rules = ruleset_service.active_rules(db, settings.rules_dir)
    thresholds = active_scoring_rules(settings.rules_dir).spec.thresholds
    return {"p": data, "now": now, "ago": ago, "charts": charts(data.weeks, thresholds),
            "choices": manual.choices(rules), "reason_max": manual.REASON_MAX, "note_max": notes_service.MAX_BODY,
            "note_error": None, "intervention_error": None, "kept": {}, "done": None, **extra}


def _render(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    return templates.TemplateResponse(request, "tutor_profile.html", context, status_code=status,
                                      headers={"Cache-Control": "no-store"})


def _not_found(request: Request, exc: tutor_service.NotFound) -> Response:
    return templates.TemplateResponse(request, "error.html", {"status": 404, "message": str(exc),
                                                              "back": ("/", "Back to home")}, status_code=404)


def _done_message(request: Request) -> str | None:
    template = DONE.get(request.query_params.get("done", ""))
    return template.format(case=request.query_params.get("case", "")[:200]) if template else None


@router.get("/tutors/{tutor_id}", response_class=HTMLResponse)
def tutor_profile(request: Request, tutor_id: str, db: DbDep, settings: SettingsDep, _actor: StaffActor,
                  _reader: FeedbackReader) -> Response:
    try:
        context = _context(db, settings, tutor_id, now=utcnow(), done=_done_message(request))
    except tutor_service.NotFound as exc:
        return _not_found(request, exc)
    return _render(request, context)


async def _form(request: Request) -> dict[str, str]:
    # The Policy read this form already (its CSRF field); Starlette hands back the parsed copy.
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def _message(exc: InputError) -> str:
    return "; ".join(f"{e['msg'][:1].upper()}{e['msg'][1:]}." for e in exc.errors)


def _page_in_thread(engine: Engine, settings: Settings, tutor_id: str, **extra: Any) -> dict[str, Any]:
    with session_scope(engine) as db:
        return _context(db, settings, tutor_id, now=utcnow(), **extra)


@router.post("/tutors/{tutor_id}/notes", response_class=HTMLResponse)
async def add_note(request: Request, tutor_id: str, engine: EngineDep, settings: SettingsDep, actor: StaffActor,
                   _reader: FeedbackReader) -> Response:
    form = await _form(request)

    def write() -> None:
        with session_scope(engine) as db:
            notes_service.add_note(db, tutor_id, author_id=actor.user_id, body=form.get("body"), now=utcnow())

    try:
        await run_in_threadpool(write)
    except tutor_service.NotFound as exc:
        return _not_found(request, exc)
    except InputError as exc:
        context = await run_in_threadpool(_page_in_thread, engine, settings, tutor_id, note_error=_message(exc),
                                          kept={"body": form.get("body", "")[:notes_service.MAX_BODY + 100]})
        return _render(request, context, 422)
    return RedirectResponse(f"/tutors/{quote(tutor_id, safe='')}?done=note#notes", status_code=303)


async def _start(client: Client, settings: Settings, plan: Any) -> bool:
    """Starts the case's workflow; False when that workflow id was started before (a repeated submit)."""
    try:
        await client.start_workflow(
            manual.WORKFLOWS[plan.kind], plan, id=plan.intervention_id, task_queue=settings.temporal_task_queue,
            # A finished case's id is never reused either: the key stays one case per tutor, type and day.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        return False
    return True


@router.post("/tutors/{tutor_id}/interventions", response_class=HTMLResponse)
async def create_intervention(request: Request, tutor_id: str, engine: EngineDep, settings: SettingsDep,
                              client: TemporalDep, actor: StaffActor, _reader: FeedbackReader) -> Response:
    form = await _form(request)
    now = utcnow()

    async def page_with(message: str, status: int) -> Response:
        context = await run_in_threadpool(_page_in_thread, engine, settings, tutor_id, intervention_error=message,
                                          kept={k: form.get(k, "") for k in ("intervention_type", "reason")})
        return _render(request, context, status)

    def plan() -> Any:
        with session_scope(engine) as db:
            rules = ruleset_service.active_rules(db, settings.rules_dir)
            return manual.plan_manual(db, tutor_id, form.get("intervention_type", ""), reason=form.get("reason"),
                                      started_by=actor.name or actor.user_id, rules=rules, now=now,
                                      time_scale=settings.time_scale)

    try:
        case = await run_in_threadpool(plan)
    except tutor_service.NotFound as exc:
        return _not_found(request, exc)
    except InputError as exc:
        return await page_with(_message(exc), 422)
    except manual.AlreadyOpen as exc:
        return await page_with(str(exc), 409)
    if client is None:
        return await page_with("Temporal is unreachable, so the intervention was not started. Nothing changed; "
                               "try again shortly.", 503)
    try:
        started = await _start(client, settings, case)
    except RPCError as exc:
        return await page_with(f"Temporal refused the start ({exc.status.name}). Nothing changed; try again "
                               "shortly.", 503)
    if started:
        await run_in_threadpool(manual.record_started, engine, case, now=now)
    query = urlencode({"done": "intervention" if started else "already", "case": case.intervention_id})
    return RedirectResponse(f"/tutors/{quote(tutor_id, safe='')}?{query}#interventions", status_code=303)


# --- downloads: the same data as the page -----------------------------------------------------------------

@router.get("/tutors/{tutor_id}/profile.pdf")
def profile_pdf(request: Request, tutor_id: str, db: DbDep, settings: SettingsDep, _actor: StaffActor,
                _reader: FeedbackReader) -> Response:
    now = utcnow()
    try:
        data = profile_service.profile(db, tutor_id, now=now, rules_dir=settings.rules_dir)
    except tutor_service.NotFound as exc:
        return _not_found(request, exc)
    thresholds = active_scoring_rules(settings.rules_dir).spec.thresholds
    return pdf.pdf_response(exports.report(data, thresholds, now=now), stem=f"tutor-{tutor_id}")


@router.get("/tutors/{tutor_id}/interventions.csv")
def interventions_csv(request: Request, tutor_id: str, db: DbDep, _actor: StaffActor) -> Response:
    try:
        tutor_service.require_tutor(db, tutor_id)
    except tutor_service.NotFound as exc:
        return _not_found(request, exc)
    cases, _total = queries.tutor_history(db, tutor_id, limit=EXPORT_LIMIT)
    return export.csv_response(list(exports.intervention_rows(cases)), stem=f"tutor-{tutor_id}-interventions")


@router.get("/tutors/{tutor_id}/feedback.csv")
def feedback_csv(request: Request, tutor_id: str, db: DbDep, _actor: StaffActor, _reader: FeedbackReader) -> Response:
    try:
        tutor_service.require_tutor(db, tutor_id)
    except tutor_service.NotFound as exc:
        return _not_found(request, exc)
    items, _total = profile_service.recent_feedback(db, tutor_id, limit=EXPORT_LIMIT)
    return export.csv_response(list(exports.feedback_rows(items)), stem=f"tutor-{tutor_id}-feedback")
