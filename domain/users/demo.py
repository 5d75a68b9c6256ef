"""The demo's accounts: one per role, so whoever runs `tutorpulse demo` can sign in as each and see what it sees.

The four demo staff (users.service.DEMO_STAFF), a tutor account linked to a real tutor of the synthetic world,
a student account linked to one of that tutor's students, and a service account (the booking system). Every
run gives each a fresh random password (printed once by the demo, and revoking the old one's sessions);
accounts that exist are kept as they are, ids and links included, so a restarted demo's audit trail still
points at the same people.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, true
from sqlmodel import Session

from core.types import utcnow
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor, TutorStatus
from domain.users import service as user_service
from domain.users.models import Role, User

DEMO_TUTOR_ID = "u_demo_tutor"
DEMO_STUDENT_ID = "u_demo_student"
DEMO_SERVICE_ID = "u_demo_booking_service"
DEMO_TUTOR_EMAIL = "tutor.demo@tutorpulse.example"
DEMO_STUDENT_EMAIL = "student.demo@tutorpulse.example"
DEMO_SERVICE_EMAIL = "booking-system@tutorpulse.example"
PASSWORD_BYTES = 15  # 20 URL-safe characters, ~120 bits


@dataclass(frozen=True)
class DemoAccount:
    user_id: str
    role: str
    email: str
    name: str
    password: str
    linked: str | None  # "tutor t_0001" / "student s_0042"
    active: bool


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _demo_tutor(db: Session) -> Tutor | None:
    """An active tutor of the world (lowest id, so every run on the same world picks the same one)."""
    for condition in (Tutor.status == TutorStatus.active.value, true()):
        found = db.execute(select(Tutor).where(condition).order_by(Tutor.tutor_id).limit(1)).scalar_one_or_none()
        if found is not None:
            return found
    return None


def _demo_student(db: Session, tutor_id: str | None) -> Student | None:
    """A student of the demo tutor (their latest session), so the two accounts show the two sides of one pairing."""
    if tutor_id:
        student_id = db.execute(select(TutoringSession.student_id).where(TutoringSession.tutor_id == tutor_id)
                                .order_by(TutoringSession.scheduled_start.desc()).limit(1)).scalar_one_or_none()
        if student_id is not None:
            return db.get(Student, student_id)
    return db.execute(select(Student).order_by(Student.student_id).limit(1)).scalar_one_or_none()


def _ensure(db: Session, user_id: str, email: str, name: str, role: Role, *, tutor_id: str | None = None,
            student_id: str | None = None, now: datetime) -> User:
    user = db.get(User, user_id) or user_service.by_email(db, email)
    if user is None:
        user = user_service.create_user(db, user_id=user_id, email=email, name=name, role=role.value, password=None,
                                        tutor_id=tutor_id, student_id=student_id, now=now)
    return user


def _linked(user: User) -> str | None:
    if user.tutor_id:
        return f"tutor {user.tutor_id}"
    if user.student_id:
        return f"student {user.student_id}"
    return None


def seed_demo_accounts(db: Session, *, now: datetime | None = None) -> tuple[list[DemoAccount], list[str]]:
    """(accounts with their new passwords, notes on accounts that could not be made). Idempotent but for the
    passwords, which every call replaces (so the previous ones, and their sessions and tokens, stop working)."""
    now = now or utcnow()
    users = list(user_service.ensure_demo_staff(db, now=now))
    notes = []
    tutor_account = db.get(User, DEMO_TUTOR_ID)
    if tutor_account is None and (tutor := _demo_tutor(db)) is not None:
        tutor_account = _ensure(db, DEMO_TUTOR_ID, DEMO_TUTOR_EMAIL, tutor.name, Role.tutor, tutor_id=tutor.tutor_id,
                                now=now)
    if tutor_account is not None:
        users.append(tutor_account)
    else:
        notes.append("no tutor account: the world has no tutors yet")
    student_account = db.get(User, DEMO_STUDENT_ID)
    if student_account is None and (student := _demo_student(db, tutor_account.tutor_id if tutor_account else None)):
        student_account = _ensure(db, DEMO_STUDENT_ID, DEMO_STUDENT_EMAIL, student.name, Role.student,
                                  student_id=student.student_id, now=now)
    if student_account is not None:
        users.append(student_account)
    else:
        notes.append("no student account: the world has no students yet")
    users.append(_ensure(db, DEMO_SERVICE_ID, DEMO_SERVICE_EMAIL, "Booking system", Role.service, now=now))
    accounts = []
    for user in users:
        password = new_password()
        user_service.set_password(db, user, password, now=now)
        accounts.append(DemoAccount(user_id=user.user_id, role=user.role, email=user.email, name=user.name,
                                    password=password, linked=_linked(user), active=user.is_active))
        if not user.is_active:
            notes.append(f"{user.user_id} is deactivated (an admin did so): its new password works once reactivated")
    db.flush()
    return accounts, notes
