"""Feedback links: a signed token per session lets a student rate it without signing in (PRD UI System 3).

The token is ``<payload>.<mac>``, both urlsafe base64 without padding: the payload is the session id and an
expiry (Unix seconds), the mac an HMAC-SHA256 under a key derived from the application secret for this purpose
alone. Holding the token is the permission: it names one session and nothing about the student.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlmodel import Session

from core.errors import InputError, field_error
from core.keys import derive, process_keys
from core.types import utcnow
from domain.feedback.models import DimensionRatings, FeedbackIn, StudentFeedback
from domain.feedback.service import ingest_feedback
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor

# How long a link stays usable. The PRD reminds after 24 h; two weeks leaves room for that and a late reply
# without keeping old links alive for ever. Not in Settings yet (core/config.py is the lead's): a parameter here.
LINK_DAYS = 14
MAX_TOKEN_LENGTH = 400
IMPROVEMENT_AREAS = ("Tutor was late", "Tutor seemed unprepared", "Didn't explain things clearly",
                     "Wasn't patient or encouraging", "Technical issues", "Other")
ImprovementArea = Literal[IMPROVEMENT_AREAS]  # type: ignore[valid-type]
WorkAgain = Literal["yes_definitely", "maybe", "probably_not", "no"]
# The PRD's "Would you want to work with this tutor again?" stored in the feed's would_recommend.
WOULD_RECOMMEND: dict[str, bool | None] = {"yes_definitely": True, "maybe": None, "probably_not": False, "no": False}


class LinkInvalid(ValueError):
    """Not a token this application signed (garbled, truncated or tampered with)."""


class LinkExpired(ValueError):
    """A genuine token past its expiry."""


class AlreadySubmitted(Exception):
    def __init__(self, feedback_id: str):
        super().__init__(f"feedback {feedback_id} exists")
        self.feedback_id = feedback_id


class NotYetHeld(Exception):
    """The session has not started: there is nothing to rate yet."""


def _key() -> bytes:
    return derive(process_keys().secret, "feedback-link")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(session_id: str, *, now: datetime | None = None, days: int = LINK_DAYS, key: bytes | None = None
         ) -> tuple[str, datetime]:
    expires = (now or utcnow()) + timedelta(days=days)
    payload = _b64(f"{session_id}\n{int(expires.timestamp())}".encode())
    mac = hmac.new(key or _key(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}", datetime.fromtimestamp(int(expires.timestamp()), UTC)


def verify(token: str, *, now: datetime | None = None, key: bytes | None = None) -> tuple[str, datetime]:
    """(session id, expiry) of a token this application signed; LinkInvalid or LinkExpired otherwise."""
    payload, dot, mac_text = token.partition(".")
    if not dot or not payload or len(token) > MAX_TOKEN_LENGTH:
        raise LinkInvalid("not a feedback link token")
    expected = _b64(hmac.new(key or _key(), payload.encode(), hashlib.sha256).digest())
    # Compared as text, not decoded: base64 decoding skips stray characters, so a padded-out mac would pass.
    if not hmac.compare_digest(expected.encode(), mac_text.encode("utf-8", "replace")):
        raise LinkInvalid("the token's signature does not match")
    # Only a payload we signed reaches here, so its shape is ours.
    session_id, _, expiry = _unb64(payload).decode().rpartition("\n")
    expires = datetime.fromtimestamp(int(expiry), UTC)
    if expires <= (now or utcnow()):
        raise LinkExpired(f"expired at {expires.isoformat()}")
    return session_id, expires


def feedback_id_for(session_id: str) -> str:
    """One feedback id per session, so a retried or repeated submit can never store a second row."""
    return "fl_" + hashlib.sha256(session_id.encode()).hexdigest()[:40]


def first_name(full_name: str) -> str:
    parts = full_name.split()
    return parts[0] if parts else ""


class FirstSessionAnswers(BaseModel):
    """The first-session step: would the student work with this tutor again, and if not, what went wrong."""

    model_config = ConfigDict(extra="forbid")

    work_again: WorkAgain
    improvement_areas: list[ImprovementArea] = Field(  # type: ignore[valid-type]
        default_factory=list, max_length=len(IMPROVEMENT_AREAS))

    @model_validator(mode="after")
    def _areas_follow_a_no(self) -> FirstSessionAnswers:
        if self.improvement_areas and self.work_again not in ("probably_not", "no"):
            raise ValueError("improvement_areas are asked only after 'probably_not' or 'no' in work_again")
        if len(set(self.improvement_areas)) != len(self.improvement_areas):
            raise ValueError("improvement_areas lists an area twice")
        return self


class LinkFeedbackIn(BaseModel):
    """What the student's form posts: a star rating, and optionally dimensions, text and first-session answers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rating: int = Field(ge=1, le=5, description="Overall, 1-5 stars")
    dimensions: DimensionRatings = Field(default_factory=DimensionRatings)
    text: str | None = Field(default=None, max_length=500)
    first_session: FirstSessionAnswers | None = Field(
        default=None, description="Only for a first session (the form's GET says whether this is one)")


@dataclass(frozen=True)
class LinkView:
    session_id: str
    tutor_id: str
    subject: str
    tutor_first_name: str
    first_session: bool
    scheduled_start: datetime
    feedback_id: str | None  # the session's feedback if any has been given (by link or by the feed)


def view(db: Session, session_id: str) -> LinkView | None:
    s = db.get(TutoringSession, session_id)
    if s is None:
        return None
    tutor = db.get(Tutor, s.tutor_id)
    given = db.execute(select(StudentFeedback.feedback_id).where(StudentFeedback.session_id == session_id)
                       ).scalar_one_or_none()
    return LinkView(session_id=s.session_id, tutor_id=s.tutor_id, subject=s.subject,
                    tutor_first_name=first_name(tutor.name) if tutor else "", first_session=s.session_number == 1,
                    scheduled_start=s.scheduled_start, feedback_id=given)


def submit(db: Session, session_id: str, answers: LinkFeedbackIn, *, now: datetime | None = None
           ) -> tuple[str, str]:
    """Stores the feedback for a session reached through its link; returns (feedback id, tutor id).

    LookupError when the session is gone, AlreadySubmitted when it has feedback, NotYetHeld before it starts,
    InputError for answers that do not fit this session. A concurrent second submit loses on the unique
    session_id (IntegrityError; the caller maps it to 409).
    """
    now = now or utcnow()
    s = db.get(TutoringSession, session_id)
    if s is None:
        raise LookupError(session_id)
    given = db.execute(select(StudentFeedback.feedback_id).where(StudentFeedback.session_id == session_id)
                       ).scalar_one_or_none()
    if given is not None:
        raise AlreadySubmitted(given)
    if s.scheduled_start > now:
        raise NotYetHeld(session_id)
    first = s.session_number == 1
    if answers.first_session is not None and not first:
        raise InputError([field_error(["body", "first_session"], "this was not a first session: leave it out")])
    fs = answers.first_session
    item = FeedbackIn(
        feedback_id=feedback_id_for(session_id), session_id=session_id, student_id=s.student_id,
        tutor_id=s.tutor_id, overall_rating=answers.rating, first_session=first, ratings=answers.dimensions,
        would_recommend=WOULD_RECOMMEND[fs.work_again] if fs else None,
        improvement_areas=list(fs.improvement_areas) if fs else [], free_text_feedback=answers.text or None,
        timestamp=now,
    )
    ingest_feedback(db, [item], many=False, now=now)
    return item.feedback_id, s.tutor_id
