"""A tutor's own notifications: list them, mark one opened, answer it. Opening and answering are what
automated interventions track (PRD §4.3 "track tutor response"); an answer also ends the case's tracking
early through a signal to its workflow. Tutors see message text only, never scores or risk levels."""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session

from api.policy import TutorActor as ActorDep
from api.deps import DbDep, TemporalDep
from core.types import utcnow
from domain.interventions import service as intervention_service
from domain.interventions.models import OutboxMessage
from domain.users.models import User

router = APIRouter(tags=["notifications"])
MISSING = {404: {"description": "No such notification for this tutor (another tutor's answers the same)"}}


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    message_id: str
    subject: str
    body: str
    created_at: datetime
    opened_at: datetime | None
    responded_at: datetime | None


class ResponseIn(BaseModel):
    response: str = Field(min_length=1, max_length=2000)


def _own_tutor(db: Session, user_id: str) -> str:
    user = db.get(User, user_id)
    if user is None or user.role != "tutor" or not user.tutor_id:
        raise HTTPException(status_code=403, detail="Notifications are for tutor accounts: this user has no tutor record.")
    return user.tutor_id


def _own_message(db: Session, tutor_id: str, message_id: str) -> OutboxMessage:
    message = db.get(OutboxMessage, message_id)
    # Someone else's message answers 404 like a missing one: ids of other tutors' messages are not confirmed.
    if message is None or message.tutor_id != tutor_id or message.recipient_role is not None or message.channel != "in_app":
        raise HTTPException(status_code=404, detail=f"No notification {message_id} for you.")
    return message


@router.get("/me/notifications", response_model=list[NotificationRead])
def my_notifications(db: DbDep, actor: ActorDep) -> list[OutboxMessage]:
    tutor_id = _own_tutor(db, actor.user_id)
    return list(db.execute(select(OutboxMessage).where(
        OutboxMessage.tutor_id == tutor_id, OutboxMessage.channel == "in_app", OutboxMessage.recipient_role.is_(None))
        .order_by(OutboxMessage.created_at.desc()).limit(100)).scalars())


@router.post("/me/notifications/{message_id}/open", response_model=NotificationRead, responses=MISSING)
def open_notification(message_id: str, db: DbDep, actor: ActorDep) -> OutboxMessage:
    message = _own_message(db, _own_tutor(db, actor.user_id), message_id)
    intervention_service.record_response(db, message.message_id, opened=True, response=None, now=utcnow())
    db.commit()
    return message


@router.post("/me/notifications/{message_id}/respond", response_model=NotificationRead, responses=MISSING)
async def respond(message_id: str, body: ResponseIn, db: DbDep, actor: ActorDep, client: TemporalDep) -> OutboxMessage:
    message = _own_message(db, _own_tutor(db, actor.user_id), message_id)
    intervention_service.record_response(db, message.message_id, opened=True, response=body.response, now=utcnow())
    db.commit()
    if client is not None:
        try:
            await client.get_workflow_handle(message.intervention_id).signal("tutor_responded")
        except Exception:  # noqa: BLE001 - the answer is stored; a closed case simply has nothing left to track
            pass
    return message
