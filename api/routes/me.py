"""A tutor's and a student's own data. The caller's linked record is the only one these routes read: no path
takes an id, so there is no other tutor's or student's data to ask for.

Tutors get growth framing: their tier (the bottom two merged), tenure, figures, anonymised feedback. Never a
churn score, risk level or model factor, and nothing that names or singles out a student (domain.feedback.
anonymise). Students get their own sessions and their own feedback, with only the tutor's first name.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import and_, distinct, func, select
from sqlmodel import Session

from api.actor import Actor
from api.deps import DbDep
from api.params import Offset
from api.policy import StudentActor, TutorActor
from api.schemas.me import (
    AnonymousFeedback, FeedbackWeekRead, StudentFeedbackPage, StudentFeedbackRead, StudentSessionPage,
    StudentSessionRead, TutorFeedbackPage, TutorSelfSummary, TutorSessionPage, TutorSessionRead, TutorTierPage,
    TutorTierRead, WindowFigures,
)
from core.types import utcnow
from domain.feedback import anonymise
from domain.feedback.links import first_name
from domain.feedback.models import StudentFeedback
from domain.metrics.models import TutorPerformanceMetric
from domain.sessions.models import TutoringSession
from domain.tiers.models import TierHistory
from domain.tutors.models import Tutor

router = APIRouter(prefix="/me", tags=["me"])

MAX_LIMIT = 200
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
WHO = {401: {"description": "Not signed in"}, 403: {"description": "Not this role, or no linked record"},
       422: {"description": "Invalid query parameter (the detail names it)"}}
TIER_LABELS = {"Exemplary": "Exemplary", "Strong": "Strong", "Developing": "Developing",
               "Needs Attention": "Growing", "At Risk": "Growing"}
SESSION_MILESTONES = (1000, 500, 250, 100, 50, 10)
RATING_BADGE = 4.8


def linked_tutor_id(actor: Actor) -> str:
    if not actor.tutor_id:
        raise HTTPException(status_code=403, detail="This tutor account is not linked to a tutor record: ask an "
                                                    "admin to link it (tutorpulse users set-role).")
    return actor.tutor_id


def _student_id(actor: Actor) -> str:
    if not actor.student_id:
        raise HTTPException(status_code=403, detail="This student account is not linked to a student record: ask "
                                                    "an admin to link it (tutorpulse users set-role).")
    return actor.student_id


def _count(db: Session, stmt) -> int:  # noqa: ANN001 - a Select
    return db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()


# --- tutor ------------------------------------------------------------------------------------------------

def _raters(db: Session, tutor_id: str, start: datetime, end: datetime) -> int:
    """Distinct students behind the ratings a metrics window averages (held sessions, feed or feedback rating)."""
    s, f = TutoringSession, StudentFeedback
    stmt = (select(func.count(distinct(s.student_id)))
            .select_from(s).outerjoin(f, and_(f.session_id == s.session_id, f.submitted_at < end))
            .where(s.tutor_id == tutor_id, s.scheduled_start >= start, s.scheduled_start < end, s.no_show.is_(False),
                   (s.student_rating.is_not(None)) | (f.overall_rating.is_not(None))))
    return db.execute(stmt).scalar_one()


def _figures(db: Session, tutor_id: str, window: str, days: int) -> WindowFigures | None:
    m = TutorPerformanceMetric
    row = db.execute(select(m).where(m.tutor_id == tutor_id, m.window == window)
                     .order_by(m.calculation_date.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        return None
    # A week with one or two students' ratings would hand the tutor those students' ratings: withheld.
    hidden = _raters(db, tutor_id, row.as_of - timedelta(days=days), row.as_of) < anonymise.K_MIN_STUDENTS
    return WindowFigures(days=days, as_of=row.as_of, sessions_scheduled=row.sessions_scheduled,
                         sessions_completed=row.sessions_completed,
                         average_rating=None if hidden or row.avg_rating is None else round(row.avg_rating, 2),
                         rating_hidden=hidden and row.avg_rating is not None, reschedule_rate=row.reschedule_rate,
                         no_show_count=row.no_show_count)


def tier_changes(db: Session, tutor_id: str) -> list[TutorTierRead]:
    """Tier history as the tutor reads it, newest first: a change between two merged tiers is no change."""
    h = TierHistory
    out: list[TutorTierRead] = []
    for tier, at in db.execute(select(h.tier, h.assigned_at).where(h.tutor_id == tutor_id)
                               .order_by(h.assigned_at, h.tier_history_id)):
        label = TIER_LABELS.get(tier)
        if label and (not out or out[-1].tier != label):
            out.append(TutorTierRead(tier=label, since=at.date()))
    return out[::-1]


def _highlights(db: Session, tutor_id: str, last_30: WindowFigures | None) -> list[str]:
    s = TutoringSession
    held = db.execute(select(func.count()).where(s.tutor_id == tutor_id, s.no_show.is_(False),
                                                 s.scheduled_start < utcnow())).scalar_one()
    out = [f"{next(n for n in SESSION_MILESTONES if held >= n)} sessions"] if held >= SESSION_MILESTONES[-1] else []
    if last_30 and last_30.average_rating is not None and last_30.average_rating >= RATING_BADGE:
        out.append(f"{RATING_BADGE}+ average rating over 30 days")
    return out


@router.get("/tutor/summary", response_model=TutorSelfSummary, responses=WHO,
            summary="My tier, tenure and this week's and 30-day figures")
def tutor_summary(db: DbDep, actor: TutorActor) -> TutorSelfSummary:
    tutor_id = linked_tutor_id(actor)
    tutor = db.get(Tutor, tutor_id)
    if tutor is None:
        raise HTTPException(status_code=403, detail="This account's tutor record no longer exists.")
    tiers = tier_changes(db, tutor_id)
    last_30 = _figures(db, tutor_id, "30day", 30)
    return TutorSelfSummary(
        first_name=first_name(tutor.name), tier=tiers[0].tier if tiers else None,
        tier_since=tiers[0].since if tiers else None, onboarding_date=tutor.onboarding_date,
        tenure_days=max(0, (utcnow().date() - tutor.onboarding_date).days),
        this_week=_figures(db, tutor_id, "7day", 7), last_30_days=last_30,
        highlights=_highlights(db, tutor_id, last_30),
    )


@router.get("/tutor/sessions", response_model=TutorSessionPage, responses=WHO,
            summary="My sessions, newest first (nothing about the student)")
def tutor_sessions(db: DbDep, actor: TutorActor, limit: Limit = 50, offset: Offset = 0) -> TutorSessionPage:
    s = TutoringSession
    base = select(s.subject, s.session_type, s.scheduled_start, s.actual_start, s.duration_minutes,
                  s.session_number, s.late_start_minutes, s.no_show, s.tutor_initiated_reschedule
                  ).where(s.tutor_id == linked_tutor_id(actor))
    rows = db.execute(base.order_by(s.scheduled_start.desc(), s.session_id).limit(limit).offset(offset))
    # Per-session ratings are left out on purpose: the tutor knows who was in each session, so a rating next to
    # it names its author. Ratings reach tutors only through the week-grouped, suppressed feedback.
    items = [TutorSessionRead(subject=r.subject, session_type=r.session_type, scheduled_start=r.scheduled_start,
                              actual_start=r.actual_start, duration_minutes=r.duration_minutes,
                              first_session=r.session_number == 1, late_start_minutes=r.late_start_minutes,
                              no_show=r.no_show, tutor_initiated_reschedule=r.tutor_initiated_reschedule)
             for r in rows]
    return TutorSessionPage(items=items, total=_count(db, base), limit=limit, offset=offset)


@router.get("/tutor/feedback", response_model=TutorFeedbackPage, responses=WHO,
            summary="Feedback I received, anonymised and grouped by week")
def tutor_feedback(db: DbDep, actor: TutorActor, limit: Annotated[int, Query(ge=1, le=52)] = 12,
                   offset: Offset = 0) -> TutorFeedbackPage:
    page = anonymise.tutor_feedback(db, linked_tutor_id(actor), limit=limit, offset=offset)
    weeks = [FeedbackWeekRead(week=w.week, week_start=w.week_start, feedback_count=w.feedback_count,
                              suppressed=w.suppressed, average_rating=w.average_rating,
                              dimension_averages=w.dimension_averages,
                              items=[AnonymousFeedback(overall_rating=i.overall_rating, dimensions=i.dimensions,
                                                       would_recommend=i.would_recommend,
                                                       improvement_areas=i.improvement_areas, text=i.text)
                                     for i in w.items])
             for w in page.weeks]
    return TutorFeedbackPage(min_students=page.min_students, items=weeks, total=page.total, limit=limit,
                             offset=offset)


@router.get("/tutor/tiers", response_model=TutorTierPage, responses=WHO, summary="My tier history, newest first")
def tutor_tiers(db: DbDep, actor: TutorActor, limit: Limit = 50, offset: Offset = 0) -> TutorTierPage:
    changes = tier_changes(db, linked_tutor_id(actor))
    return TutorTierPage(items=changes[offset:offset + limit], total=len(changes), limit=limit, offset=offset)


# --- student ----------------------------------------------------------------------------------------------

def _tutor_first_names(db: Session, tutor_ids: set[str]) -> dict[str, str]:
    if not tutor_ids:
        return {}
    rows = db.execute(select(Tutor.tutor_id, Tutor.name).where(Tutor.tutor_id.in_(sorted(tutor_ids))))
    return {tid: first_name(name) for tid, name in rows}


@router.get("/student/feedback", response_model=StudentFeedbackPage, responses=WHO,
            summary="Feedback I gave, newest first")
def student_feedback(db: DbDep, actor: StudentActor, limit: Limit = 50, offset: Offset = 0) -> StudentFeedbackPage:
    f, s = StudentFeedback, TutoringSession
    base = (select(f, s.subject, s.scheduled_start).join(s, s.session_id == f.session_id)
            .where(f.student_id == _student_id(actor)))
    rows = db.execute(base.order_by(f.submitted_at.desc(), f.feedback_id).limit(limit).offset(offset)).all()
    names = _tutor_first_names(db, {fb.tutor_id for fb, _, _ in rows})
    items = [StudentFeedbackRead(
        feedback_id=fb.feedback_id, tutor_first_name=names.get(fb.tutor_id, ""), subject=subject,
        session_date=start.date(), submitted_at=fb.submitted_at, first_session=fb.is_first_session,
        overall_rating=fb.overall_rating,
        dimensions={d: getattr(fb, f"{d}_rating") for d in anonymise.DIMENSIONS},
        would_recommend=fb.would_recommend, improvement_areas=list(fb.improvement_areas or []),
        text=fb.free_text_feedback) for fb, subject, start in rows]
    return StudentFeedbackPage(items=items, total=_count(db, base), limit=limit, offset=offset)


@router.get("/student/sessions", response_model=StudentSessionPage, responses=WHO,
            summary="My sessions, newest first, and whether I gave feedback")
def student_sessions(db: DbDep, actor: StudentActor, limit: Limit = 50, offset: Offset = 0) -> StudentSessionPage:
    s, f = TutoringSession, StudentFeedback
    base = (select(s.tutor_id, s.subject, s.scheduled_start, s.actual_start, s.duration_minutes, s.session_number,
                   f.feedback_id).outerjoin(f, f.session_id == s.session_id)
            .where(s.student_id == _student_id(actor)))
    rows = db.execute(base.order_by(s.scheduled_start.desc(), s.session_id).limit(limit).offset(offset)).all()
    names = _tutor_first_names(db, {r.tutor_id for r in rows})
    items = [StudentSessionRead(tutor_first_name=names.get(r.tutor_id, ""), subject=r.subject,
                                scheduled_start=r.scheduled_start, actual_start=r.actual_start,
                                duration_minutes=r.duration_minutes, first_session=r.session_number == 1,
                                feedback_given=r.feedback_id is not None) for r in rows]
    return StudentSessionPage(items=items, total=_count(db, base), limit=limit, offset=offset)
