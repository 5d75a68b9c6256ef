"""Pre-session alerts: an upcoming first session is scored by the live first-session model; at or above the
rules' threshold it becomes an open alert for staff, and the tutor gets a prep reminder in-app.

The reminder goes through the intervention outbox (an automated case of the rules' reminder type with one
in-app message, written by the same service functions the intervention workflows use), in the same
transaction as the alert. It needs no workflow: there is nothing to wait for or follow up, so the case is
closed as soon as its message is written. Its texts come verbatim from rules/first_session.yaml, whose loader
refuses any mention of risk or a placeholder: tutors never see a risk figure or a student's name.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.errors import InputError, field_error
from domain.first_sessions.models import AlertStatus, BookingIn, FirstSessionAlert, RiskResult, summary
from domain.interventions import service as intervention_service
from domain.interventions.planning import intervention_id
from domain.model_registry import service as registry
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from ml.first_session import FEATURES, Upcoming, describe
from rules.first_session import FirstSessionRules
from rules.scoring import ScoringRuleSet
from workflows.inputs import InterventionPlan, InterventionStep, TaskSnapshot, TaskView

KIND = "first_session"
ALERTING = (AlertStatus.open.value, AlertStatus.acknowledged.value)
_COMPARED = ("tutor_id", "student_id", "subject", "scheduled_start")


class UnknownRecord(LookupError):
    """A tutor, student or alert that does not exist (404)."""


class BookingConflict(Exception):
    """The booking id was scored before with different details (409)."""


class ModelUnavailable(RuntimeError):
    """No usable live first-session model (503): nothing is stored."""


def _result(row: FirstSessionAlert, status: str) -> RiskResult:
    return RiskResult(id=row.alert_id, status=status, alert=row.status in ALERTING, alert_status=row.status,
                      probability=row.probability, threshold=row.threshold, model_version=row.model_version,
                      rules_version=row.rules_version, factors=row.factors, reminder_id=row.reminder_id,
                      summary=summary(row.probability, row.status in ALERTING, row.reminder_id))


def _same_booking(row: FirstSessionAlert, booking: BookingIn) -> RiskResult:
    differ = [f for f in _COMPARED if getattr(row, f) != getattr(booking, f)]
    if differ:
        raise BookingConflict(f"booking {booking.booking_id} was already scored with other {', '.join(differ)}; "
                              "a changed booking needs a new booking_id")
    return _result(row, "existing")


def live_model(db: Session, models_dir: Path) -> tuple[str, object]:
    row = registry.live_version(db, KIND)
    if row is None:
        raise ModelUnavailable("no live first-session model: train one with `tutorpulse first-sessions train`")
    try:
        model = registry.load_model(row, models_dir)
    except registry.RegistryError as exc:
        raise ModelUnavailable(f"the live first-session model cannot be loaded: {exc}") from None
    if tuple(getattr(model, "features", ())) != FEATURES:
        raise ModelUnavailable(f"the live first-session model {row.version} reads other features than this "
                               "version of TutorPulse: retrain it with `tutorpulse first-sessions train`")
    return row.version, model


def _check(db: Session, booking: BookingIn, now: datetime) -> None:
    if booking.scheduled_start <= now:
        raise InputError([field_error(["body", "scheduled_start"], "must be in the future: alerts come before the session")])
    for name, model in (("tutor_id", Tutor), ("student_id", Student)):
        if db.get(model, getattr(booking, name)) is None:
            raise UnknownRecord(f"unknown {name.removesuffix('_id')} {getattr(booking, name)!r}")
    met = db.execute(select(TutoringSession.session_id).where(
        TutoringSession.tutor_id == booking.tutor_id, TutoringSession.student_id == booking.student_id).limit(1)).first()
    if met is not None:
        raise InputError([field_error(["body", "student_id"], "this student has had sessions with this tutor already: "
                                      "not a first session")])


def _reminder_plan(booking: BookingIn, rules: FirstSessionRules, *, model_version: str, now: datetime) -> InterventionPlan:
    r = rules.spec.reminder
    return InterventionPlan(
        intervention_id=intervention_id(booking.tutor_id, r.intervention_type, now, key=booking.booking_id),
        tutor_id=booking.tutor_id, intervention_type=r.intervention_type, kind="automated", title=r.title,
        # Staff-facing; still no probability and no student: the figure lives on the alert, for staff only.
        trigger_reason=(f"Pre-session alert for first session {booking.booking_id} at "
                        f"{booking.scheduled_start.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({model_version})"),
        recommended_at=now, rules_version=rules.version_label[:40], rules_hash=rules.hash,
        matched_rules=["first_session_alert"], message_subject=r.message_subject, message_body=r.message_body,
        channels=["in_app"])


def _send_reminder(db: Session, plan: InterventionPlan, now: datetime) -> None:
    intervention_service.record_intervention(db, plan, now=now)
    intervention_service.write_messages(db, InterventionStep(plan=plan, step="message", at=now))
    intervention_service.save_snapshot(db, TaskSnapshot(
        plan=plan, view=TaskView(intervention_id=plan.intervention_id, status="completed", revision=1,
                                 notes="prep reminder sent in-app before the first session"),
        event="completed", actor=None, at=now))


def assess_booking(db: Session, booking: BookingIn, *, rules: FirstSessionRules, scoring: ScoringRuleSet,
                   models_dir: Path, now: datetime) -> RiskResult:
    """Scores an upcoming first session once (idempotent on booking_id) and raises its alert if due."""
    existing = db.get(FirstSessionAlert, booking.booking_id)
    if existing is not None:  # before any other check: a repeat gets the first answer even after the start
        return _same_booking(existing, booking)
    _check(db, booking, now)
    version, model = live_model(db, models_dir)
    item = Upcoming(key=booking.booking_id, tutor_id=booking.tutor_id, student_id=booking.student_id,
                    subject=booking.subject, scheduled_start=booking.scheduled_start)
    # The tutor's history as of the last midnight before now: the scheduled day may not have begun.
    table = describe(db, [item], [now.astimezone(UTC).date()], scoring=scoring)
    probability = float(model.predict(table.X)[0])  # type: ignore[attr-defined]
    factors = model.factors(table.X, top=rules.spec.alerts.top_factors)[0]  # type: ignore[attr-defined]
    alerting = probability >= rules.spec.alert_threshold
    row = FirstSessionAlert(
        alert_id=booking.booking_id, tutor_id=booking.tutor_id, student_id=booking.student_id, subject=booking.subject,
        scheduled_start=booking.scheduled_start, probability=round(probability, 6), threshold=rules.spec.alert_threshold,
        factors=factors, model_version=version, rules_version=rules.version_label[:40], rules_hash=rules.hash,
        status=AlertStatus.open.value if alerting else AlertStatus.below_threshold.value, created_at=now)
    plan = (_reminder_plan(booking, rules, model_version=version, now=now)
            if alerting and rules.spec.reminder.enabled else None)
    try:
        db.add(row)
        db.flush()  # the booking's key first: a concurrent post of the same booking fails here
        if plan is not None:
            row.reminder_id = plan.intervention_id
            _send_reminder(db, plan, now)
            db.flush()
    except IntegrityError:
        # The other post committed between our check and our insert. No savepoint (pysqlite's SAVEPOINT outside
        # a transaction commits on release), so the transaction is rolled back: callers commit earlier work first.
        db.rollback()
        existing = db.get(FirstSessionAlert, booking.booking_id)
        if existing is None:
            raise
        return _same_booking(existing, booking)
    return _result(row, "created")


def list_alerts(db: Session, *, now: datetime, statuses: tuple[str, ...] = (AlertStatus.open.value,),
                tutor_id: str | None = None, subject: str | None = None, min_probability: float | None = None,
                include_past: bool = False, limit: int = 50, offset: int = 0) -> tuple[list[FirstSessionAlert], int]:
    """Alerts, soonest session first; by default only open ones whose session has not started."""
    a = FirstSessionAlert
    conds = [a.status.in_(list(statuses))]
    if not include_past:
        conds.append(a.scheduled_start >= now)
    if tutor_id:
        conds.append(a.tutor_id == tutor_id)
    if subject:
        conds.append(a.subject == subject)
    if min_probability is not None:
        conds.append(a.probability >= min_probability)
    total = db.execute(select(func.count()).select_from(a).where(*conds)).scalar_one()
    rows = db.execute(select(a).where(*conds).order_by(a.scheduled_start, a.alert_id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


def acknowledge(db: Session, alert_id: str, *, by: str, now: datetime) -> FirstSessionAlert:
    """Open -> acknowledged (once; a repeat returns the row as it is)."""
    row = db.get(FirstSessionAlert, alert_id, with_for_update=True)
    if row is None or row.status not in ALERTING:
        # A booking scored below the threshold is not an alert: it answers like a missing one.
        raise UnknownRecord(f"no first-session alert {alert_id!r}")
    if row.status == AlertStatus.open.value:
        row.status, row.acknowledged_by, row.acknowledged_at = AlertStatus.acknowledged.value, by, now
        db.flush()
    return row
