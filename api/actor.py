"""Who is calling, until real accounts arrive (issue 7 replaces this one module).

A caller names itself with the ``X-User-Id`` header (the queue page: the ``tp_user`` cookie). The id must be an
active row of ``users``; the role stored there is what the intervention workflows decide with. This is an
identification, not an authentication: it keeps actions attributable and roles honest in the demo, nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlmodel import Session

from core.db import session_scope
from domain.users import service as user_service

USER_HEADER = "X-User-Id"
USER_COOKIE = "tp_user"
# RFC 9110 asks a 401 to say how to authenticate; this names the header the caller is missing.
_CHALLENGE = {"WWW-Authenticate": f'{USER_HEADER} realm="tutorpulse"'}


@dataclass(frozen=True)
class Actor:
    user_id: str
    role: str
    name: str = ""


class ActorRefused(Exception):
    """Why a caller may not act: 401 (not identified) or 403 (identified, wrong role)."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message


def resolve_actor(db: Session, user_id: str | None) -> Actor:
    """The active user behind ``user_id``; ActorRefused(401) when missing, unknown or inactive."""
    user_id = (user_id or "").strip()
    if not user_id:
        raise ActorRefused(401, f"Say who is acting: send the {USER_HEADER} header with a staff user id.")
    user = user_service.active_user(db, user_id)
    if user is None:
        # One message for unknown and inactive: the caller cannot tell which ids exist.
        raise ActorRefused(401, f"User {user_id!r} is unknown or inactive.")
    return Actor(user_id=user.user_id, role=user.role, name=user.name)


def require_staff(actor: Actor) -> Actor:
    if not user_service.is_staff(actor.role):
        raise ActorRefused(403, f"The intervention queue is for staff; {actor.user_id} is a {actor.role}.")
    return actor


def _http(exc: ActorRefused) -> HTTPException:
    return HTTPException(status_code=exc.status_code, detail=exc.message,
                         headers=_CHALLENGE if exc.status_code == 401 else None)


def current_actor(request: Request,
                  x_user_id: Annotated[str | None, Header(alias=USER_HEADER, description="Staff user id")] = None
                  ) -> Actor:
    # Its own short transaction: the route's session (if any) is not opened yet when dependencies resolve.
    with session_scope(request.app.state.engine) as db:
        try:
            return resolve_actor(db, x_user_id)
        except ActorRefused as exc:
            raise _http(exc) from None


def current_staff(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    try:
        return require_staff(actor)
    except ActorRefused as exc:
        raise _http(exc) from None


ActorDep = Annotated[Actor, Depends(current_actor)]
StaffDep = Annotated[Actor, Depends(current_staff)]
