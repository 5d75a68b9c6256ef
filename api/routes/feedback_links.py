"""The public feedback endpoint: a student opens their session's signed link and rates it without signing in.

GET returns what the form needs (tutor first name, subject, whether to ask the first-session questions, whether
feedback was already given) and POST stores the answers. A second submit for a session answers 409 Conflict:
the form is one-shot, and the student must learn that a second answer was not recorded rather than see a
success that changed nothing. The stored feedback id is derived from the session id, so even two racing
submits cannot store two rows.

Staff and the marketplace's systems (service accounts) get a session's link from POST /feedback/links.
"""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.actor import client_address
from api.deps import DbDep, EngineDep, SettingsDep, TemporalDep
from api.policy import PUBLIC, Policy
from api.ratelimit import rate_limited
from api.schemas.me import FeedbackFormRead, FeedbackLinkRead, FeedbackLinkRequest, FeedbackSubmitted
from core.db import session_scope
from core.errors import InputError, field_error
from core.temporal import try_notify
from core.types import utcnow
from domain.audit import service as audit_service
from domain.feedback import links
from domain.users.models import Role

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


def _audit(db: Session, request: Request, session_id: str, action: str) -> None:
    audit_service.record(db, actor=LINK_ACTOR, action=action, resource_type="student_data",
                         resource_id=f"session_id={session_id}", source=client_address(request),
                         details={"method": request.method, "path": "/feedback/link/{token}"})


@router.post("/feedback/links", response_model=FeedbackLinkRead, status_code=201,
             responses={422: {"description": "Unknown session_id"}}, dependencies=[Depends(LINK_ISSUERS)],
             summary="A signed feedback link for a session (for the post-session email)")
def create_link(body: FeedbackLinkRequest, db: DbDep, request: Request) -> FeedbackLinkRead:
    if links.view(db, body.session_id) is None:
        raise InputError([field_error(["body", "session_id"], f"unknown session_id '{body.session_id}'",
                                      "value_error.unknown_id")])
    token, expires = links.sign(body.session_id)
    return FeedbackLinkRead(token=token, path=request.url_for("feedback_form", token=token).path, expires_at=expires)


@router.get("/feedback/link/{token}", response_model=FeedbackFormRead, name="feedback_form", responses=BAD_LINK,
            dependencies=[Depends(rate_limited("feedback-form", "feedback_rate_limit")), Depends(PUBLIC)],
            summary="What the feedback form for this link shows (no student data)")
def feedback_form(db: DbDep, request: Request, token: str = Token) -> FeedbackFormRead:
    session_id, expires = _session_of(token)
    found = links.view(db, session_id)
    if found is None:
        raise HTTPException(status_code=404, detail="This feedback link's session no longer exists.")
    _audit(db, request, session_id, "read")
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

    def write() -> tuple[str, str]:
        with session_scope(engine) as db:
            stored = links.submit(db, session_id, answers, now=utcnow())
            _audit(db, request, session_id, "write")
            return stored

    try:
        feedback_id, tutor_id = await run_in_threadpool(write)
    except links.AlreadySubmitted:
        raise HTTPException(status_code=409, detail="Feedback for this session was already submitted; only the "
                                                    "first answer counts.") from None
    except IntegrityError:  # a concurrent submit of the same session committed first
        raise HTTPException(status_code=409, detail="Feedback for this session was already submitted; only the "
                                                    "first answer counts.") from None
    except LookupError:
        raise HTTPException(status_code=404, detail="This feedback link's session no longer exists.") from None
    except links.NotYetHeld:
        raise HTTPException(status_code=409,
                            detail="This session has not taken place yet: rate it afterwards.") from None
    # After the commit, as ingestion does: the tutor's workflow re-evaluates at once, so a poor first session
    # is flagged now; if Temporal is down the sweep picks the session up.
    await try_notify(client, {tutor_id: [session_id]}, task_queue=settings.temporal_task_queue)
    return FeedbackSubmitted(feedback_id=feedback_id)
