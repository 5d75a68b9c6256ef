"""Account administration as JSON (admin only): list, create, change role, activate or deactivate.

Refusals: 422 naming the body field at fault (``loc`` ["body", field], FastAPI's shape), 404 for an unknown user,
409 for a change that would leave no active admin. The password a create carries is hashed and dropped: no
response, log line or audit row holds it. The account operations below are shared with the admin pages
(web.admin_views) and the `tutorpulse users` command, so all three refuse the same things the same way and
leave the same audit rows.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from sqlalchemy import func, select
from sqlmodel import Session

from api.actor import client_address
from api.deps import EngineDep
from api.policy import AdminActor
from api.schemas.admin import PLAIN, ActiveChange, RoleChange, UserCreate, UserRead
from core.db import session_scope
from core.errors import InputError, field_error
from domain.audit import service as audit_service
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.users import service as user_service
from domain.users.models import Role, User

router = APIRouter(tags=["users"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown user"}, 409: {"description": "the change would leave no active admin"}}


UserId = Annotated[str, Path(max_length=64, pattern=PLAIN)]


class LastAdmin(Exception):
    """Deactivating or demoting the only active admin would lock everyone out of account administration."""


def _plain(value: str) -> bool:
    # PostgreSQL refuses NUL in a text parameter with an error, not a miss: such an id is looked up by nobody.
    return not any(ord(c) < 32 or ord(c) == 127 for c in value)


def check_links_exist(db: Session, *, tutor_id: str | None, student_id: str | None) -> None:
    # The foreign keys would refuse these too, but as an IntegrityError that names no field and ends the transaction.
    if tutor_id and (not _plain(tutor_id) or db.get(Tutor, tutor_id) is None):
        raise user_service.AccountError("tutor_id", f"no tutor {tutor_id!r}")
    if student_id and (not _plain(student_id) or db.get(Student, student_id) is None):
        raise user_service.AccountError("student_id", f"no student {student_id!r}")


def _existing(db: Session, user_id: str) -> User:
    user = db.get(User, user_id) if _plain(user_id) else None
    if user is None:
        raise user_service.AccountError("user_id", f"no user {user_id}")
    return user


def _keep_an_admin(db: Session, user: User) -> None:
    others = db.execute(select(func.count()).select_from(User).where(
        User.role == Role.admin.value, User.is_active.is_(True), User.user_id != user.user_id)).scalar_one()
    if user.role == Role.admin.value and user.is_active and others == 0:
        raise LastAdmin(f"{user.user_id} is the only active admin: make another account admin first")


def _audit(db: Session, *, by: str, source: str | None, user: User, change: str, **details: Any) -> None:
    # Ids and roles only: the account's name and email are PII and stay out of the audit trail.
    audit_service.record(db, actor=by, action="write", resource_type="user", resource_id=user.user_id, source=source,
                         details={"change": change, "role": user.role, **details})


def create_account(db: Session, *, by: str, source: str | None, email: str, name: str, role: str,
                   password: str | None, tutor_id: str | None = None, student_id: str | None = None) -> User:
    check_links_exist(db, tutor_id=tutor_id, student_id=student_id)
    user = user_service.create_user(db, email=email, name=name, role=role, password=password, tutor_id=tutor_id,
                                    student_id=student_id)
    _audit(db, by=by, source=source, user=user, change="create", tutor_id=tutor_id, student_id=student_id,
           has_password=password is not None)
    return user


def change_role(db: Session, user_id: str, *, by: str, source: str | None, role: str, tutor_id: str | None = None,
                student_id: str | None = None) -> User:
    user = _existing(db, user_id)
    before = user.role
    if role not in user_service.ROLE_NAMES:
        raise user_service.AccountError("role", f"{role!r} is not a role; one of {', '.join(user_service.ROLE_NAMES)}")
    if role != Role.admin.value:
        _keep_an_admin(db, user)
    check_links_exist(db, tutor_id=tutor_id, student_id=student_id)
    user_service.set_role(db, user_id, role, tutor_id=tutor_id, student_id=student_id)
    _audit(db, by=by, source=source, user=user, change="role", previous_role=before, tutor_id=tutor_id,
           student_id=student_id)
    return user


def change_active(db: Session, user_id: str, *, by: str, source: str | None, active: bool) -> User:
    user = _existing(db, user_id)
    if not active:
        _keep_an_admin(db, user)
    user_service.set_active(db, user_id, active)
    _audit(db, by=by, source=source, user=user, change="activate" if active else "deactivate")
    return user


def change_password(db: Session, user_id: str, *, by: str, source: str | None, password: str) -> User:
    user = _existing(db, user_id)
    user_service.set_password(db, user, password)
    _audit(db, by=by, source=source, user=user, change="password")
    return user


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


@router.post("/users", response_model=UserRead, status_code=201, summary="Create an account")
def create(body: UserCreate, request: Request, engine: EngineDep, actor: AdminActor) -> UserRead:
    try:
        with session_scope(engine) as db:
            user = create_account(db, by=actor.user_id, source=client_address(request), email=body.email,
                                  name=body.name, role=body.role.value,
                                  password=body.password.get_secret_value() if body.password else None,
                                  tutor_id=body.tutor_id, student_id=body.student_id)
            return UserRead.of(user)
    except (user_service.AccountError, LastAdmin) as exc:
        raise _refused(exc) from None


@router.post("/users/{user_id}/role", response_model=UserRead, responses=RESPONSES,
             summary="Change an account's role (its sessions and tokens end)")
def set_role(user_id: UserId, body: RoleChange, request: Request, engine: EngineDep, actor: AdminActor) -> UserRead:
    try:
        with session_scope(engine) as db:
            user = change_role(db, user_id, by=actor.user_id, source=client_address(request), role=body.role.value,
                               tutor_id=body.tutor_id, student_id=body.student_id)
            return UserRead.of(user)
    except (user_service.AccountError, LastAdmin) as exc:
        raise _refused(exc) from None


@router.post("/users/{user_id}/active", response_model=UserRead, responses=RESPONSES,
             summary="Activate or deactivate an account (deactivation ends its sessions and tokens)")
def set_active(user_id: UserId, body: ActiveChange, request: Request, engine: EngineDep, actor: AdminActor) -> UserRead:
    try:
        with session_scope(engine) as db:
            user = change_active(db, user_id, by=actor.user_id, source=client_address(request), active=body.active)
            return UserRead.of(user)
    except (user_service.AccountError, LastAdmin) as exc:
        raise _refused(exc) from None
