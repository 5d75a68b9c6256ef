"""Account administration as JSON (admin only): list, create, change role, activate or deactivate.

Refusals: 422 naming the body field at fault (``loc`` ["body", field], FastAPI's shape), 404 for an unknown user,
409 for a change that would leave no active admin. The password a create carries is hashed and dropped: no
response, log line or audit row holds it. The account operations are domain.users.accounts, shared with the admin
pages and the `tutorpulse users` command.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from api.actor import client_address
from api.deps import EngineDep
from api.policy import AdminActor
from api.schemas.admin import PLAIN, ActiveChange, RoleChange, UserCreate, UserRead
from core.db import session_scope
from core.errors import InputError, field_error
from domain.users import service as user_service
from domain.users.accounts import LastAdmin, change_active, change_role, create_account
from domain.users.models import Role, User

router = APIRouter(tags=["users"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown user"}, 409: {"description": "the change would leave no active admin"}}


UserId = Annotated[str, Path(max_length=64, pattern=PLAIN)]


def _refused(exc: user_service.AccountError | LastAdmin) -> Exception:
    if isinstance(exc, LastAdmin):
        return HTTPException(status_code=409, detail=str(exc))
    if exc.field == "user_id":
        return HTTPException(status_code=404, detail=exc.message)
    return InputError([field_error(["body", exc.field], exc.message, "account_invalid")])


@router.get("/users", response_model=list[UserRead], summary="Accounts, by role then name")
def list_accounts(engine: EngineDep, _actor: AdminActor,
                  role: Annotated[Role | None, Query(description="only accounts with this role")] = None,
                  ) -> list[UserRead]:
    with session_scope(engine) as db:
        return [UserRead.of(u) for u in user_service.list_users(db, role.value if role else None)]


def _apply(engine: Engine, change: Callable[[Session], User]) -> UserRead:
    """One transaction; a refusal rolls it back and answers 422 (the field), 404 (the user) or 409 (last admin)."""
    try:
        with session_scope(engine) as db:
            return UserRead.of(change(db))
    except (user_service.AccountError, LastAdmin) as exc:
        raise _refused(exc) from None


@router.post("/users", response_model=UserRead, status_code=201, summary="Create an account")
def create(body: UserCreate, request: Request, engine: EngineDep, actor: AdminActor) -> UserRead:
    password = body.password.get_secret_value() if body.password else None
    return _apply(engine, lambda db: create_account(
        db, by=actor.user_id, source=client_address(request), email=body.email, name=body.name, role=body.role.value,
        password=password, tutor_id=body.tutor_id, student_id=body.student_id))


@router.post("/users/{user_id}/role", response_model=UserRead, responses=RESPONSES,
             summary="Change an account's role (its sessions and tokens end)")
def set_role(user_id: UserId, body: RoleChange, request: Request, engine: EngineDep, actor: AdminActor) -> UserRead:
    return _apply(engine, lambda db: change_role(db, user_id, by=actor.user_id, source=client_address(request),
                                                 role=body.role.value, tutor_id=body.tutor_id,
                                                 student_id=body.student_id))


@router.post("/users/{user_id}/active", response_model=UserRead, responses=RESPONSES,
             summary="Activate or deactivate an account (deactivation ends its sessions and tokens)")
def set_active(user_id: UserId, body: ActiveChange, request: Request, engine: EngineDep, actor: AdminActor) -> UserRead:
    return _apply(engine, lambda db: change_active(db, user_id, by=actor.user_id, source=client_address(request),
                                                   active=body.active))
