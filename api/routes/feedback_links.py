"""The public feedback endpoint: a student opens their session's signed link and rates it without signing in.

GET returns what the form needs (tutor first name, subject, whether to ask the first-session questions, whether
feedback was already given) and POST stores the answers. A second submit for a session answers 409 Conflict:
the form is one-shot, and the student must learn that a second answer was not recorded rather than see a
success that changed nothing. The stored feedback id is derived from the session id, so even two racing
submits cannot store two rows.

Staff and the marketplace's systems (service accounts) get a session's link from POST /feedback/links, which also
schedules the session's email reminder (workflows.feedback_reminder). The student's page (web.feedback_views)
stores its answers through ``store_link_feedback``, the same path as POST here.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from temporalio.client import Client

from api.actor import client_address
from api.deps import DbDep, EngineDep, SettingsDep, TemporalDep
from api.policy import PUBLIC, Policy
from api.ratelimit import rate_limited
from api.schemas.me import FeedbackFormRead, FeedbackLinkRead, FeedbackLinkRequest, FeedbackSubmitted
from core.config import Settings
from core.db import session_scope
from core.errors import InputError, field_error
from core.temporal import try_notify
from core.types import utcnow
from domain.audit import service as audit_service
from domain.feedback import links, reminders
from domain.users.models import Role
from workflows.feedback_reminder import start_feedback_reminder

router = APIRouter(tags=["feedback"])

# Who may mint a link: the marketplace's systems (to put it in the post-session email) and staff.
LINK_ISSUERS = Policy(Role.service, Role.ops_manager, Role.people_ops, Role.admin, name="feedback link issuers",
                      audit="student_data")
LINK_ACTOR = "anonymous:feedback-link"  # who the audit log says acted: the link's holder, not an account
Token = Path(min_length=1, max_length=links.MAX_TOKEN_LENGTH, description="The signed link token")
BAD_LINK = {404: {"description": "Not a valid link, or its session no longer exists"},
            410: {"description": "The link has expired"},
            429: {"description": "Too many requests from this address"}}


def _session_of(token: str) -> tuple[str, datetime]:
    try:
        return links.verify(token)
    except links.LinkExpired:
        raise HTTPException(status_code=410, detail="This feedback link has expired: ask for a new one.") from None
    except links.LinkInvalid:
        raise HTTPException(status_code=404, detail="This feedback link is not valid: check that the whole link "
                                                    "was copied.") from None


def audit_link_use(db: Session, request: Request, session_id: str, action: str,
                   path: str = "/feedback/link/{token}") -> None:
    """The audit row of a link's use; ``path`` is the route's template, never the token (a credential)."""
    audit_service.record(db, actor=LINK_ACTOR, action=action, resource_type="student_data",
                         resource_id=f"session_id={session_id}", source=client_address(request),
                         details={"method": request.method, "path": path})


async def store_link_feedback(engine: Engine, client: Client | None, settings: Settings, request: Request,
                              session_id: str, answers: links.LinkFeedbackIn, *,
                              path: str = "/feedback/link/{token}") -> str:
    """Stores a link's answers (audited) and signals the tutor's workflow; returns the feedback id.

    Raises links.AlreadySubmitted (also when a concurrent submit of the session committed first), LookupError
    (the session is gone), links.NotYetHeld and InputError, as links.submit does.
    """
    def write() -> tuple[str, str]:
        with session_scope(engine) as db:
            stored = links.submit(db, session_id, answers, now=utcnow())
            audit_link_use(db, request, session_id, "write", path)
            return stored

    try:
        feedback_id, tutor_id = await run_in_threadpool(write)
    except IntegrityError:  # a concurrent submit of the same session committed first
        raise links.AlreadySubmitted(links.feedback_id_for(session_id)) from None
    # After the commit, as ingestion does: the tutor's workflow re-evaluates at once, so a poor first session
    # is flagged now. If Temporal is down, a session evaluated before waits for the nightly rollup: the sweep
    # re-signals only sessions no evaluation has covered.
    await try_notify(client, {tutor_id: [session_id]}, task_queue=settings.temporal_task_queue)
    return feedback_id


@router.post("/feedback/links", response_model=FeedbackLinkRead, status_code=201,
             responses={422: {"description": "Unknown session_id"}}, dependencies=[Depends(LINK_ISSUERS)],
             summary="A signed feedback link for a session (for the post-session email); schedules its reminder")
async def create_link(body: FeedbackLinkRequest, engine: EngineDep, request: Request, client: TemporalDep,
                      settings: SettingsDep) -> FeedbackLinkRead:
    def find() -> links.LinkView | None:
        with session_scope(engine) as db:
            return links.view(db, body.session_id)

    found = await run_in_threadpool(find)
    if found is None:
        raise InputError([field_error(["body", "session_id"], f"unknown session_id '{body.session_id}'",
                                      "value_error.unknown_id")])
    now = utcnow()
    token, expires = links.sign(body.session_id, now=now)
    # Due a while after the link, or after the session when a link is issued ahead of it; scaled like every timer.
    due = max(now, found.scheduled_start) + timedelta(hours=settings.feedback_reminder_hours * settings.time_scale)
    reminder = await start_feedback_reminder(client, session_id=body.session_id, link_expires_at=expires,
                                             remind_at=due, task_queue=settings.temporal_task_queue)
    return FeedbackLinkRead(token=token, path=request.url_for("feedback_form", token=token).path, expires_at=expires,
                            page_path=reminders.PAGE_PATH.format(token=token), reminder=reminder)


@router.get("/feedback/link/{token}", response_model=FeedbackFormRead, name="feedback_form", responses=BAD_LINK,
            dependencies=[Depends(rate_limited("feedback-form", "feedback_rate_limit")), Depends(PUBLIC)],
            summary="What the feedback form for this link shows (no student data)")
def feedback_form(db: DbDep, request: Request, token: str = Token) -> FeedbackFormRead:
    session_id, expires = _session_of(token)
    found = links.view(db, session_id)
    if found is None:
        raise HTTPException(status_code=404, detail="This feedback link's session no longer exists.")
    audit_link_use(db, request, session_id, "read")
    return FeedbackFormRead(tutor_first_name=found.tutor_first_name, subject=found.subject,
                            session_date=found.scheduled_start.date(), first_session=found.first_session,
                            already_submitted=found.feedback_id is not None, expires_at=expires)


@router.post("/feedback/link/{token}", response_model=FeedbackSubmitted, status_code=201,
             responses={**BAD_LINK, 409: {"description": "Feedback was already given for this session, or the "
                                                          "session has not taken place yet"},
                        422: {"description": "Invalid answers (the detail names the field)"}},
             dependencies=[Depends(rate_limited("feedback", "feedback_rate_limit")), Depends(PUBLIC)],
             summary="Submit the feedback for this link's session (once)")
async def submit_feedback(answers: links.LinkFeedbackIn, request: Request, engine: EngineDep, client: TemporalDep,
                          settings: SettingsDep, token: str = Token) -> FeedbackSubmitted:
    session_id, _expires = _session_of(token)
    try:
        feedback_id = await store_link_feedback(engine, client, settings, request, session_id, answers)
    except links.AlreadySubmitted:
        raise HTTPException(status_code=409, detail="Feedback for this session was already submitted; only the "
                                                    "first answer counts.") from None
    except LookupError:
        raise HTTPException(status_code=404, detail="This feedback link's session no longer exists.") from None
    except links.NotYetHeld:
        raise HTTPException(status_code=409,
                            detail="This session has not taken place yet: rate it afterwards.") from None
    return FeedbackSubmitted(feedback_id=feedback_id)
