"""Staff users: the demo's staff and the look-ups the queue needs to know who is acting.

Until accounts arrive (issue 7), a caller names itself with a user id; these functions only say whether that
id is a known, active user and what role it has. Nothing here checks a password.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from core.types import utcnow
from domain.users.models import Role, User

# Roles that work the intervention queue; tutors and students never see it.
STAFF_ROLES = (Role.ops_manager, Role.people_ops, Role.admin)


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


def ensure_demo_staff(db: Session, *, now: datetime | None = None) -> list[User]:
    """Creates the demo staff that are missing and returns all of them; running it again changes nothing.

    Existing rows are left as they are (an admin may have deactivated one): the demo only fills gaps.
    """
    now = now or utcnow()
    users = []
    for member in DEMO_STAFF:
        user = db.get(User, member.user_id)
        if user is None:
            user = User(user_id=member.user_id, email=member.email, name=member.name, role=member.role.value,
                        is_active=True, created_at=now, updated_at=now)
            db.add(user)
        users.append(user)
    db.flush()
    return users


def active_user(db: Session, user_id: str) -> User | None:
    """The user with this id if it exists and is active; None otherwise (callers answer 401 either way)."""
    user = db.get(User, user_id)
    return user if user is not None and user.is_active else None


def active_staff(db: Session) -> list[User]:
    """Active users who can work the queue, by role then name (the queue page's user picker)."""
    stmt = (select(User).where(User.is_active.is_(True), User.role.in_([r.value for r in STAFF_ROLES]))
            .order_by(User.role, User.name))
    return list(db.execute(stmt).scalars())


def is_staff(role: str) -> bool:
    return role in {r.value for r in STAFF_ROLES}
