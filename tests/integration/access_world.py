"""A small world every route can be called against: the access matrix (test_access_matrix.py) and the schemathesis
run (test_schemathesis.py, bench/schemathesis_long.py) share it.

Two tutors: A has a student account's student, sessions (one rated, one with an open feedback link), a prediction,
a metrics row, an intervention, an in-app notification and a first-session alert; B exists so "a tutor reads only
their own" has someone else's record to be refused. The rule store holds the shipped rule set (active), the next
version in shadow and a draft, so every rules GET has something to answer. One account per role, plus one
(TARGET_USER) that the account routes may change without signing out a caller.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import fastapi.routing
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine

from api.policy import Policy, policy_of

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.feedback import links
from domain.feedback.models import FeedbackIn
from domain.feedback.service import ingest_feedback
from domain.first_sessions.models import FirstSessionAlert
from domain.interventions.models import OutboxMessage
from domain.metrics.models import TutorPerformanceMetric
from domain.rulesets import service as ruleset_service
from domain.rulesets.models import VersionStatus
from domain.scoring.models import ChurnPrediction, RiskLevel
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from domain.users.models import Role
from tests.auth import account
from tests.factories import feedback_payload, intervention_row, seed_people, session_payload

TUTOR_A, TUTOR_B = "tutor_1", "tutor_2"
STUDENT_A = "student_1"  # tutor A's student, linked to the student account
INTERVENTION = "iv-access-1"
MESSAGE = f"{INTERVENTION}:message:in_app"
ALERT = "booking-access-1"
RULESET = "tutor_interventions"
TARGET_USER = "u_access_target"  # the account the user-administration routes act on: no caller signs in as it

ROLES = tuple(r.value for r in Role)
USERS = {r.value: f"u_access_{r.value}" for r in Role}

# What each path parameter is filled with, by name. A route with a parameter not listed here fails the access
# matrix ("add a value for ..."), so a new route is covered the day it appears.
PATH_VALUES: dict[str, str] = {
    "tutor_id": TUTOR_A,
    "student_id": STUDENT_A,
    "intervention_id": INTERVENTION,
    "message_id": MESSAGE,
    "alert_id": ALERT,
    "ruleset": RULESET,
    # Filled in by seed_world (World.path_values): the shipped rule file's version, active once seeded, and a
    # signed feedback link for tutor A's unrated session.
    "version": "",
    "token": "",
    "user_id": TARGET_USER,
    # The queue page's form action: "claim" reaches the workflow (503 here, Temporal is unreachable).
    "action": "claim",
}
# Parameters that name another account's record: the value a tutor must be refused (404) on.
OTHERS: dict[str, str] = {"tutor_id": TUTOR_B, "student_id": "student_2"}


@dataclass
class World:
    users: dict[str, str]  # role -> the user id of its account
    path_values: dict[str, str] = field(default_factory=dict)


def world_settings(db_url: str, **overrides: object) -> Settings:
    """Settings for these runs: Temporal unreachable on purpose (port 1 refuses at once), so routes that need it
    show their 503 rather than a timeout; sign-in limits high enough that hundreds of calls are not refused."""
    base = dict(database_url=db_url, temporal_address="127.0.0.1:1", temporal_task_queue=f"tq-{uuid.uuid4().hex[:8]}",
                login_rate_limit="100000/minute", feedback_rate_limit="100000/minute")
    return Settings(**{**base, **overrides})


def seed_world(engine: Engine, settings: Settings) -> World:
    """Seeds the world; returns each role's account and the value of every path parameter."""
    seed_people(engine, tutors=2, students=3)
    now = utcnow().replace(microsecond=0)
    sessions = [session_payload(n, tutor=TUTOR_A, student=STUDENT_A, at=now - timedelta(days=1)) for n in (1, 2)]
    sessions.append(session_payload(1, tutor=TUTOR_B, student="student_2", at=now - timedelta(days=1)))
    with session_scope(engine) as db:
        ingest_sessions(db, [SessionIn.model_validate(s) for s in sessions], many=True)
    rated = [sessions[0], sessions[2]]  # tutor A's second session is left unrated: its feedback link is open
    with session_scope(engine) as db:
        ingest_feedback(db, [FeedbackIn.model_validate(feedback_payload(s)) for s in rated], many=True)
    with session_scope(engine) as db:
        for tutor, score, level in ((TUTOR_A, 71.0, RiskLevel.high), (TUTOR_B, 22.0, RiskLevel.low)):
            db.add(ChurnPrediction(tutor_id=tutor, prediction_date=now.date(), as_of=now, churn_score=score,
                                   risk_level=level, model_version="access-test"))
            db.add(TutorPerformanceMetric(tutor_id=tutor, calculation_date=now.date(), window="30day", as_of=now,
                                          sessions_scheduled=2, sessions_completed=2, avg_rating=4.5))
        db.add(intervention_row(INTERVENTION, TUTOR_A, "coaching_session", recommended=now - timedelta(hours=2),
                                owner_role="people_ops", due_date=now + timedelta(days=2)))
        db.flush()
        db.add(OutboxMessage(message_id=MESSAGE, intervention_id=INTERVENTION, tutor_id=TUTOR_A, channel="in_app",
                             subject="A tip for next week", body="Plan the first ten minutes.", status="sent",
                             sent_at=now, created_at=now))
        db.add(FirstSessionAlert(alert_id=ALERT, tutor_id=TUTOR_A, student_id="student_3", subject="Mathematics",
                                 scheduled_start=now + timedelta(days=1), probability=0.7, threshold=0.5,
                                 model_version="access-test", rules_version="first_session@v1", rules_hash="h",
                                 status="open"))
    active_version = _seed_rules(engine, settings)
    users = {role: account(engine, role, user_id=uid, tutor_id=TUTOR_A if role == Role.tutor else None,
                           student_id=STUDENT_A if role == Role.student else None)
             for role, uid in USERS.items()}
    account(engine, Role.people_ops.value, user_id=TARGET_USER)
    token, _expires = links.sign(sessions[1]["session_id"])
    return World(users=users, path_values={**PATH_VALUES, "version": str(active_version), "token": token})


def _seed_rules(engine: Engine, settings: Settings) -> int:
    """The shipped rule set active, the next version in shadow, and a draft; returns the active version."""
    # force: the seed cache is per process and database URL, and SQLite test databases reuse file names.
    with session_scope(engine) as db:
        ruleset_service.seed(db, rules_dir=settings.rules_dir, force=True)
        active = ruleset_service.get_active(db, RULESET)
        now = utcnow()
        ruleset_service.save_draft(db, RULESET, content=active.content, author="seed", now=now)
        ruleset_service.publish(db, RULESET, author="seed", now=now, status=VersionStatus.shadow)
        ruleset_service.save_draft(db, RULESET, content=active.content, author="seed", now=now)
        return active.version


def policies_by_operation(app: FastAPI) -> dict[str, list[Policy]]:
    """Each API operation's policies by its schema label ("GET /api/v1/tutors"), read from the route table."""
    found: dict[str, list[Policy]] = {}
    for ctx in fastapi.routing.iter_route_contexts(app.routes):
        if isinstance(getattr(ctx, "original_route", ctx), APIRoute):
            for method in ctx.methods or ():
                found[f"{method} {ctx.path_format}"] = policy_of(ctx.dependant.dependencies)
    return found
