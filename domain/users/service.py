"""Accounts: create, find, change role, deactivate; the demo's one account per role.

Emails and names are encrypted at rest (core.crypto), so a lookup by email goes through email_hash.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from core.crypto import keyed_hash
from core.passwords import hash_password
from core.types import utcnow
from domain.users.models import Role, User

# Roles that work the intervention queue; tutors, students and service accounts never see it.
STAFF_ROLES = (Role.ops_manager, Role.people_ops, Role.admin)
ROLE_NAMES = tuple(r.value for r in Role)


class AccountError(ValueError):
    """A refused account change; ``field`` names the input at fault (the CLI and API print it)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class StaffMember:
    user_id: str
    name: str
    email: str
    role: Role


# PRD persona 1 (Sarah, the operations manager), the People Ops staff who own H2-H5, and an admin for the rules.
DEMO_STAFF = (
    StaffMember("u_sarah_chen", "Sarah Chen", "sarah.chen@tutorpulse.example", Role.ops_manager),
    StaffMember("u_marcus_reed", "Marcus Reed", "marcus.reed@tutorpulse.example", Role.people_ops),
    StaffMember("u_priya_natarajan", "Priya Natarajan", "priya.natarajan@tutorpulse.example", Role.people_ops),
    StaffMember("u_dana_whitfield", "Dana Whitfield", "dana.whitfield@tutorpulse.example", Role.admin),
)


def _check_role(role: str) -> str:
    if role not in ROLE_NAMES:
        raise AccountError("role", f"{role!r} is not a role; one of {', '.join(ROLE_NAMES)}")
    return role


def _check_links(role: str, tutor_id: str | None, student_id: str | None) -> None:
    if role == Role.tutor and not tutor_id:
        raise AccountError("tutor_id", "a tutor account must name the tutor record it reads")
    if role == Role.student and not student_id:
        raise AccountError("student_id", "a student account must name the student record it reads")
    if role != Role.tutor and tutor_id:
        raise AccountError("tutor_id", f"only tutor accounts link to a tutor record, not {role}")
    if role != Role.student and student_id:
        raise AccountError("student_id", f"only student accounts link to a student record, not {role}")


def by_email(db: Session, email: str) -> User | None:
    return db.execute(select(User).where(User.email_hash == keyed_hash(email))).scalar_one_or_none()


def create_user(db: Session, *, email: str, name: str, role: str, password: str | None, user_id: str | None = None,
                tutor_id: str | None = None, student_id: str | None = None, now: datetime | None = None) -> User:
    email, name = email.strip(), name.strip()
    if "@" not in email or len(email) > 254:
        raise AccountError("email", "not an email address")
    if not name or len(name) > 200:
        raise AccountError("name", "must be 1-200 characters")
    _check_links(_check_role(role), tutor_id, student_id)
    if by_email(db, email) is not None:
        raise AccountError("email", "an account with this email exists")
    user_id = user_id or f"u_{secrets.token_hex(6)}"
    if db.get(User, user_id) is not None:
        raise AccountError("user_id", f"{user_id} exists")
    try:
        hashed = hash_password(password) if password is not None else None
    except ValueError as exc:
        raise AccountError("password", str(exc)) from None
    now = now or utcnow()
    user = User(user_id=user_id, email=email, email_hash=keyed_hash(email), name=name, role=role,
                password_hash=hashed, tutor_id=tutor_id, student_id=student_id, created_at=now, updated_at=now)
    db.add(user)
    db.flush()
    return user


def set_password(db: Session, user: User, password: str, *, now: datetime | None = None) -> None:
    try:
        user.password_hash = hash_password(password)
    except ValueError as exc:
        raise AccountError("password", str(exc)) from None
    user.updated_at = now or utcnow()
    _revoke(db, user.user_id)


def set_role(db: Session, user_id: str, role: str, *, tutor_id: str | None = None, student_id: str | None = None,
             now: datetime | None = None) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise AccountError("user_id", f"no user {user_id}")
    _check_links(_check_role(role), tutor_id, student_id)
    user.role, user.tutor_id, user.student_id, user.updated_at = role, tutor_id, student_id, now or utcnow()
    _revoke(db, user_id)  # the old role's sessions end: nobody keeps powers they no longer have
    db.flush()
    return user


def set_active(db: Session, user_id: str, active: bool, *, now: datetime | None = None) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise AccountError("user_id", f"no user {user_id}")
    user.is_active, user.updated_at = active, now or utcnow()
    if not active:
        _revoke(db, user_id)
    db.flush()
    return user


def _revoke(db: Session, user_id: str) -> None:
    from domain.auth.service import revoke_all  # auth depends on users, not the other way round at import time

    revoke_all(db, user_id)


def list_users(db: Session, role: str | None = None) -> list[User]:
    stmt = select(User)
    if role:
        stmt = stmt.where(User.role == _check_role(role))
    # Names are ciphertext in the table: sort after decryption.
    return sorted(db.execute(stmt).scalars(), key=lambda u: (u.role, u.name.lower()))


def ensure_demo_staff(db: Session, *, now: datetime | None = None) -> list[User]:
    """Creates the demo staff that are missing and returns all of them; running it again changes nothing.

    Existing rows are left as they are (an admin may have deactivated one): the demo only fills gaps. They have
    no password until the demo (or `tutorpulse users set-password`) gives them one.
    """
    now = now or utcnow()
    users = []
    for member in DEMO_STAFF:
        user = db.get(User, member.user_id)
        if user is None:
            user = User(user_id=member.user_id, email=member.email, email_hash=keyed_hash(member.email),
                        name=member.name, role=member.role.value, is_active=True, created_at=now, updated_at=now)
            db.add(user)
        users.append(user)
    db.flush()
    return users


def active_user(db: Session, user_id: str) -> User | None:
    """The user with this id if it exists and is active; None otherwise (callers answer 401 either way)."""
    user = db.get(User, user_id)
    return user if user is not None and user.is_active else None


def active_staff(db: Session) -> list[User]:
    """Active users who can work the queue, by role then name (the queue page's assignee picker)."""
    stmt = select(User).where(User.is_active.is_(True), User.role.in_([r.value for r in STAFF_ROLES]))
    return sorted(db.execute(stmt).scalars(), key=lambda u: (u.role, u.name.lower()))


def is_staff(role: str) -> bool:
    return role in {r.value for r in STAFF_ROLES}
