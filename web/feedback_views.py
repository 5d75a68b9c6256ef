"""The student's feedback page (PRD UI System 3, persona Alex): a signed link opens a phone-sized form, no sign-in.

A star and Submit is the whole of it (two taps); specific areas, a comment and, for a first session, "Would you
want to work with <tutor> again?" are optional on the same form, and "What could have been better?" opens when
the answer is "Probably not" or "No". Everything is one submission because the link takes one answer per session
(a second is refused, 409): asking the follow-up after storing would need a second write the link does not allow.

The page shows what the link's JSON shows (api.routes.feedback_links): the tutor's first name, the subject and the
day, never the student's name. Answers go through ``store_link_feedback``, the API's own path: the same validation
(links.LinkFeedbackIn), the same one-per-session rule and audit row, and the same signal to the tutor's workflow,
which re-evaluates at once, so a poor first session is flagged as soon as it is submitted.

CSRF before any session exists, exactly as /login does it (web.auth_views): a nonce in the HttpOnly tp_login
cookie, here scoped to this link's path, and its keyed HMAC in the form. A signed-in visitor's post is checked
against their session's token by the Policy instead.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from starlette.datastructures import FormData

from api.actor import CSRF_FIELD, Actor
from api.deps import DbDep, EngineDep, SettingsDep, TemporalDep
from api.policy import PublicActor
from api.ratelimit import rate_limited
from api.routes.feedback_links import audit_link_use, store_link_feedback
from core.config import Settings
from core.db import session_scope
from core.errors import InputError
from core.types import utcnow
from domain.feedback import links
from domain.feedback.models import DimensionRatings
from domain.feedback.reminders import PAGE_PATH
from web.auth_views import LOGIN_COOKIE, LOGIN_COOKIE_SECONDS, login_token, login_token_ok
from web.templating import templates

router = APIRouter(include_in_schema=False)
MAX_TEXT = links.LinkFeedbackIn.model_fields["text"].metadata[0].max_length
RATING_WORDS = {1: "Poor", 2: "Fair", 3: "OK", 4: "Good", 5: "Great"}
LOW_RATING = 2  # at or below: the comment asks what could have been better, and the thanks say sorry
# The areas the link accepts, in its order (subject_knowledge -> "Subject knowledge").
DIMENSIONS = {name: name.replace("_", " ").capitalize() for name in DimensionRatings.model_fields}
WORK_AGAIN = {"yes_definitely": "Yes, definitely!", "maybe": "Maybe", "probably_not": "Probably not", "no": "No"}
FOLLOW_UP = ("probably_not", "no")  # the answers that ask "What could have been better?"
FIELDS = {"rating", "text", "work_again", "improvement_areas", CSRF_FIELD, *DIMENSIONS}
STALE = "This form was open for a long time. Check your answers and press Submit again."
# Why a link shows no form: (status, heading, message).
CLOSED = {
    "invalid": (404, "This link does not work",
                "Part of the link may be missing: open it again from your email, or copy the whole of it."),
    "gone": (404, "This session is no longer here", "There is nothing to rate on this link any more."),
    "expired": (410, "This link has expired",
                f"Feedback links work for {links.LINK_DAYS} days after the session. Thank you for wanting to help!"),
    "given": (409, "You have already rated this session", "Only the first answer counts, and we have it. Thank you!"),
    "not_yet": (409, "This session has not happened yet", "Come back to this link after your session to rate it."),
}


@dataclass
class Answers:
    """What the student sent, as text: parsed into links.LinkFeedbackIn, or shown again on a refused form."""

    rating: str = ""
    dimensions: dict[str, str] = field(default_factory=dict)
    text: str = ""
    work_again: str = ""
    areas: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: FormData) -> Answers:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        # A browser sends a textarea's line breaks as CRLF but counts each as one character against maxlength.
        comment = text("text").replace("\r\n", "\n")
        return cls(rating=text("rating"), dimensions={k: text(k) for k in DIMENSIONS if text(k)}, text=comment,
                   work_again=text("work_again"),
                   areas=[a for a in form.getlist("improvement_areas") if isinstance(a, str)],
                   unknown=sorted(set(form.keys()) - FIELDS))

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"dimensions": self.dimensions}
        if self.rating:
            body["rating"] = self.rating
        if self.text:
            body["text"] = self.text
        if self.work_again or self.areas:
            body["first_session"] = {"improvement_areas": self.areas}
            if self.work_again:
                body["first_session"]["work_again"] = self.work_again
        return body

    @property
    def low(self) -> bool:
        return (self.rating.isdigit() and int(self.rating) <= LOW_RATING) or self.work_again in FOLLOW_UP


def _field_of(loc: list[Any] | tuple[Any, ...]) -> str:
    """The form field an error's location names (body.dimensions.patience -> patience)."""
    parts = [p for p in loc if p != "body"]
    if parts[:1] == ["dimensions"] and len(parts) > 1:
        return str(parts[1])
    if parts[:1] == ["first_session"]:
        # The model's own check (areas without a "no", an area twice) is located at first_session itself.
        return "work_again" if parts[1:2] == ["work_again"] else "improvement_areas"
    return str(parts[0]) if parts else "rating"


def _message(name: str, tutor: str) -> str:
    if name in DIMENSIONS:
        return f"Rate {DIMENSIONS[name].lower()} from 1 to 5, or leave it blank."
    return {
        "rating": "Choose a star rating from 1 (Poor) to 5 (Great).",
        "text": f"Keep your comment to {MAX_TEXT} characters or fewer.",
        "work_again": f"Choose one answer to “Would you want to work with {tutor} again?”.",
        "improvement_areas": "Tick only the boxes under “What could have been better?”, each once, and only "
                             "after answering “Probably not” or “No”.",
    }.get(name, f"“{name[:40]}” is not a question on this form.")


def _parse(answers: Answers, tutor: str) -> tuple[links.LinkFeedbackIn | None, dict[str, str]]:
    if answers.unknown:
        return None, {answers.unknown[0]: _message(answers.unknown[0], tutor)}
    try:
        return links.LinkFeedbackIn.model_validate(answers.payload()), {}
    except ValidationError as exc:
        names = dict.fromkeys(_field_of(e["loc"]) for e in exc.errors())
        return None, {n: _message(n, tutor) for n in names}


def _tutor(found: links.LinkView) -> str:
    return found.tutor_first_name or "your tutor"


def _anchor(name: str) -> str:
    """The id of the first control of a field: the error summary links there."""
    if name == "rating" or name in DIMENSIONS:
        return f"{name}-1"
    firsts = {"work_again": "work_again-yes_definitely", "improvement_areas": "area-0", "text": "text"}
    return firsts.get(name, "rating-1")


def _no_store(response: Response) -> Response:
    # A page holding a CSRF token, or a link's answers, must not sit in a shared cache; nor be indexed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _closed(request: Request, reason: str) -> Response:
    status, heading, message = CLOSED[reason]
    return _no_store(templates.TemplateResponse(request, "feedback_closed.html", {
        "heading": heading, "message": message}, status_code=status))


def _form(request: Request, settings: Settings, found: links.LinkView, actor: Actor | None, *,
          answers: Answers | None = None, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(32)
    errors = errors or {}
    response = templates.TemplateResponse(request, "feedback_form.html", {
        "action": request.url.path, "tutor": _tutor(found), "subject": found.subject,
        "session_date": found.scheduled_start.date(), "first_session": found.first_session,
        # The Policy checks a signed-in visitor's session token (web.templating's csrf_token); the link's pair
        # is for everyone else.
        "link_csrf": None if actor is not None else login_token(nonce),
        "answers": answers or Answers(), "errors": errors, "anchors": {n: _anchor(n) for n in errors},
        "rating_words": RATING_WORDS, "dimensions": DIMENSIONS, "work_again": WORK_AGAIN, "follow_up": FOLLOW_UP,
        "areas": links.IMPROVEMENT_AREAS, "max_text": MAX_TEXT, "low_rating": LOW_RATING,
    }, status_code=status)
    if actor is None:
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_SECONDS, path=request.url.path, httponly=True,
                            samesite="lax", secure=settings.cookie_secure)
    return _no_store(response)


def _verify(token: str) -> tuple[str | None, datetime | None, str | None]:
    """(session id, expiry, None) for a good link, else (None, None, the reason it shows no form)."""
    try:
        session_id, expires = links.verify(token)
    except links.LinkExpired:
        return None, None, "expired"
    except links.LinkInvalid:
        return None, None, "invalid"
    return session_id, expires, None


def _no_form(found: links.LinkView) -> str | None:
    if found.feedback_id is not None:
        return "given"
    return "not_yet" if found.scheduled_start > utcnow() else None


def _view(engine: Engine, session_id: str) -> links.LinkView | None:
    with session_scope(engine) as db:
        return links.view(db, session_id)


@router.get(PAGE_PATH, response_class=HTMLResponse,
            dependencies=[Depends(rate_limited("feedback-form", "feedback_rate_limit"))])
def feedback_page(request: Request, token: str, db: DbDep, settings: SettingsDep, actor: PublicActor) -> Response:
    session_id, expires, reason = _verify(token)
    if session_id is None:
        return _closed(request, reason or "invalid")
    found = links.view(db, session_id)
    if found is None:
        return _closed(request, "gone")
    audit_link_use(db, request, session_id, "read", PAGE_PATH)  # the tutor and subject of a student's session
    reason = _no_form(found)
    if reason:
        return _closed(request, reason)
    if request.query_params.get("skip") is not None:
        # "Skip for now" stores nothing: the link keeps working, and the one reminder (if any) still comes.
        return _no_store(templates.TemplateResponse(request, "feedback_later.html", {
            "tutor": _tutor(found), "expires": expires, "action": request.url.path}))
    return _form(request, settings, found, actor)


@router.post(PAGE_PATH, response_class=HTMLResponse,
             dependencies=[Depends(rate_limited("feedback", "feedback_rate_limit"))])
async def submit_feedback_page(request: Request, token: str, engine: EngineDep, settings: SettingsDep,
                               client: TemporalDep, actor: PublicActor) -> Response:
    session_id, _expires, reason = _verify(token)
    if session_id is None:
        return _closed(request, reason or "invalid")
    found = await run_in_threadpool(_view, engine, session_id)
    if found is None:
        return _closed(request, "gone")
    reason = _no_form(found)  # checked again when storing: a racing submit loses there
    if reason:
        return _closed(request, reason)
    form = await request.form()
    answers = Answers.from_form(form)
    presented = form.get(CSRF_FIELD)
    if actor is None and not login_token_ok(request.cookies.get(LOGIN_COOKIE),
                                            presented if isinstance(presented, str) else None):
        return _form(request, settings, found, actor, answers=answers, errors={"form": STALE}, status=403)
    parsed, errors = _parse(answers, _tutor(found))
    if parsed is None:
        return _form(request, settings, found, actor, answers=answers, errors=errors, status=422)
    try:
        await store_link_feedback(engine, client, settings, request, session_id, parsed, path=PAGE_PATH)
    except links.AlreadySubmitted:
        return _closed(request, "given")
    except links.NotYetHeld:
        return _closed(request, "not_yet")
    except LookupError:
        return _closed(request, "gone")
    except InputError:  # first-session answers for a session that was not one (the form never offers them)
        errors = {"work_again": f"This was not your first session with {_tutor(found)}: "
                                "leave the first-session questions out."}
        return _form(request, settings, found, actor, answers=answers, errors=errors, status=422)
    response = templates.TemplateResponse(request, "feedback_thanks.html", {
        "tutor": _tutor(found), "first_session": found.first_session, "low": answers.low})
    response.delete_cookie(LOGIN_COOKIE, path=request.url.path, httponly=True, samesite="lax",
                           secure=settings.cookie_secure)
    return _no_store(response)
