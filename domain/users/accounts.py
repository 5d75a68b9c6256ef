"""Account administration: the operations the admin API, the admin pages and `tutorpulse users` share, so all
three refuse the same things the same way and leave the same audit rows (ids and roles only, never PII)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from domain.audit import service as audit_service
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.users import service as user_service
from domain.users.models import Role, User


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
