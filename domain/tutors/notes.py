"""Manager notes on a tutor: free-text annotations staff leave on the tutor profile, newest first.

Notes are appended, never edited: a note is a dated statement by its author, so a correction is a new note.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, func, select
from sqlmodel import Field, Session, SQLModel

from core.crypto import EncryptedString
from core.errors import InputError, field_error
from core.types import UTCDateTime, utcnow
from domain.tutors import service as tutor_service
from domain.users.models import User

MAX_BODY = 4000


class TutorNote(SQLModel, table=True):
    __tablename__ = "tutor_notes"

    note_id: int | None = Field(default=None, primary_key=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    author_id: str = Field(foreign_key="users.user_id", max_length=64)
    body: str = Field(sa_column=Column(EncryptedString(MAX_BODY), nullable=False))  # free text: encrypted at rest
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class NoteView:
    note: TutorNote
    author_name: str


def checked_body(body: str | None, *, loc: tuple[str, ...] = ("body", "body")) -> str:
    """The note's text without surrounding blanks; InputError naming the field when empty or too long."""
    text = (body or "").strip()
    if not text:
        raise InputError([field_error(list(loc), "write the note first: it is empty", "value_error.missing")])
    if len(text) > MAX_BODY:
        raise InputError([field_error(list(loc), f"a note is at most {MAX_BODY} characters; this one has {len(text)}",
                                      "value_error.too_long")])
    return text


def add_note(db: Session, tutor_id: str, *, author_id: str, body: str | None, now: datetime) -> TutorNote:
    """Raises tutor_service.NotFound for an unknown tutor and InputError for an empty or too long body."""
    tutor_service.require_tutor(db, tutor_id)
    note = TutorNote(tutor_id=tutor_id, author_id=author_id, body=checked_body(body), created_at=now)
    db.add(note)
    db.flush()
    return note


def list_notes(db: Session, tutor_id: str, *, limit: int = 50) -> tuple[list[NoteView], int]:
    """The newest ``limit`` notes with their authors' names, and how many there are in all."""
    total = db.execute(select(func.count()).select_from(TutorNote).where(TutorNote.tutor_id == tutor_id)).scalar_one()
    stmt = (select(TutorNote, User.name).join(User, User.user_id == TutorNote.author_id)
            .where(TutorNote.tutor_id == tutor_id)
            .order_by(TutorNote.created_at.desc(), TutorNote.note_id.desc()).limit(limit))
    return [NoteView(note, name) for note, name in db.execute(stmt)], total
