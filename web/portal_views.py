"""The tutor portal (PRD "UI System 2: Tutor Performance Portal"): the tutor's dashboard, Feedback & Growth, and
Resources. Tutors only, each page about the signed-in tutor alone (no path takes an id).

Growth framing, as the self-service API (api/routes/me.py) gives it: the tier with the bottom two merged, figures
with ratings withheld below the privacy floor, feedback grouped by ISO week by domain.feedback.anonymise. These
pages read no churn score, risk level, model factor, intervention or student name, so they cannot show one.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.actor import Actor
from api.deps import DbDep
from api.policy import TutorActor
from api.routes.me import linked_tutor_id, tier_changes  # the self-service API's tier framing and account check
from core.types import utcnow
from domain.feedback import anonymise
from domain.feedback.links import first_name
from domain.tutors import growth
from domain.tutors import portal as portal_service
from domain.tutors.models import Tutor
from web.templating import templates

router = APIRouter(include_in_schema=False)
GROWTH_WEEKS = 12  # weeks with feedback behind the breakdown and the recommended training
WEEKS_PER_PAGE = 6  # weeks of feedback per Feedback & Growth page
MAX_PAGE = 500
ACCENT, GOOD = "#1f4fb8", "#0b6b2f"  # app.css --accent and --good: the charts match the page
TIER_MESSAGES = {
    "Exemplary": "You are among our most highly rated tutors. Thank you for the care you put into every session.",
    "Strong": "Keep up the great work: your students notice it.",
    "Developing": "You are building momentum. The recommendations below show where a little focus goes far.",
    "Growing": "Every tutor grows session by session. The recommendations below show where to focus next.",
}


def _tutor(db: Session, actor: Actor) -> Tutor:
    tutor = db.get(Tutor, linked_tutor_id(actor))
    if tutor is None:
        raise HTTPException(status_code=403, detail="This account's tutor record no longer exists.")
    return tutor


def _growth(db: Session, tutor_id: str) -> tuple[list[growth.DimensionScore], list[growth.Recommendation],
                                                 anonymise.WeekPage]:
    recent = anonymise.tutor_feedback(db, tutor_id, limit=GROWTH_WEEKS)
    breakdown = growth.dimension_breakdown(recent.weeks)
    return breakdown, growth.recommendations(breakdown), recent


def _short(day: date) -> str:
    return f"{day.day} {day:%b}"


def _long(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _rating(value: float | None, hidden: bool) -> str:
    if hidden:
        return f"withheld (fewer than {anonymise.K_MIN_STUDENTS} students)"
    return f"{value:.2f} / 5" if value is not None else "no ratings"


def _percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "—"


def _change(now: float | None, before: float | None, *, unit: str, digits: int = 0, lower_is_better: bool = False
            ) -> tuple[str, str]:
    """(text, tone) of this week against last. A dip is shown plainly, not in red: growth framing."""
    if now is None or before is None:
        return "no comparison yet", "flat"
    diff = round(now - before, digits)
    if diff == 0:
        return "same as last week", "flat"
    better = diff < 0 if lower_is_better else diff > 0
    sign = "+" if diff > 0 else "−"
    return f"{sign}{abs(diff):.{digits}f}{unit} vs last week", "good" if better else "flat"


def _comparisons(d: portal_service.Dashboard) -> list[dict[str, str]]:
    this, last = d.this_week, d.last_week
    rating_now = None if this.rating_hidden else this.average_rating
    rating_before = None if last.rating_hidden else last.average_rating
    rows = [
        ("sessions", "Sessions held", str(this.sessions_held), str(last.sessions_held),
         _change(this.sessions_held, last.sessions_held, unit="")),
        ("rating", "Average rating", _rating(this.average_rating, this.rating_hidden),
         _rating(last.average_rating, last.rating_hidden), _change(rating_now, rating_before, unit="", digits=2)),
        ("on-time", f"On-time starts (within {portal_service.ON_TIME_GRACE_MINUTES} min)",
         _percent(this.on_time_rate), _percent(last.on_time_rate),
         _change(None if this.on_time_rate is None else this.on_time_rate * 100,
                 None if last.on_time_rate is None else last.on_time_rate * 100, unit=" points")),
        ("reschedules", "Sessions you rescheduled", str(this.reschedules), str(last.reschedules),
         _change(this.reschedules, last.reschedules, unit="", lower_is_better=True)),
    ]
    return [{"key": k, "label": label, "this": now, "last": before, "change": change[0], "tone": change[1]}
            for k, label, now, before, change in rows]


def _charts(weeks: list[portal_service.WeekFigures]) -> dict[str, dict[str, Any]]:
    """Chart.js configurations (static/charts.js draws them); the page's table carries the same figures."""
    labels = [_short(w.week_start) for w in weeks]
    ratings = [None if w.rating_hidden else w.average_rating for w in weeks]
    common = {"plugins": {"legend": {"display": False}}, "responsive": True}
    return {
        "rating": {"type": "line", "data": {"labels": labels, "datasets": [{
            "label": "Average rating", "data": ratings, "borderColor": ACCENT, "backgroundColor": ACCENT,
            "spanGaps": False, "pointRadius": 4, "clip": False}]},
            "options": {**common, "layout": {"padding": {"top": 6}}, "scales": {"y": {"min": 1, "max": 5, "title": {"display": True, "text": "Rating"}}}}},
        "sessions": {"type": "bar", "data": {"labels": labels, "datasets": [{
            "label": "Sessions held", "data": [w.sessions_held for w in weeks], "backgroundColor": GOOD}]},
            "options": {**common, "scales": {"y": {"beginAtZero": True, "ticks": {"precision": 0},
                                                   "title": {"display": True, "text": "Sessions"}}}}},
    }


def _latest_shown(page: anonymise.WeekPage) -> anonymise.FeedbackWeek | None:
    return next((w for w in page.weeks if not w.suppressed), None)


@router.get("/portal", response_class=HTMLResponse)
def portal_home(request: Request, db: DbDep, actor: TutorActor) -> Response:
    tutor = _tutor(db, actor)
    now = utcnow()
    tiers = tier_changes(db, tutor.tutor_id)
    dash = portal_service.dashboard(db, tutor, now=now)
    breakdown, recommended, recent = _growth(db, tutor.tutor_id)
    return templates.TemplateResponse(request, "portal.html", {
        "active": "portal", "now": now, "first_name": first_name(tutor.name),
        "tier": tiers[0] if tiers else None, "tier_message": TIER_MESSAGES.get(tiers[0].tier) if tiers else None,
        "dash": dash, "comparisons": _comparisons(dash), "charts": _charts(dash.weeks), "rating": _rating,
        "percent": _percent, "short": _short, "latest": _latest_shown(recent),
        "feedback_weeks": recent.total, "recommended": recommended, "k": anonymise.K_MIN_STUDENTS,
        "grace": portal_service.ON_TIME_GRACE_MINUTES,
    })


Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page of feedback weeks, newest first")]


@router.get("/portal/feedback", response_class=HTMLResponse)
def portal_feedback(request: Request, db: DbDep, actor: TutorActor, page: Page = 1) -> Response:
    tutor = _tutor(db, actor)
    breakdown, recommended, recent = _growth(db, tutor.tutor_id)
    shown = anonymise.tutor_feedback(db, tutor.tutor_id, limit=WEEKS_PER_PAGE, offset=(page - 1) * WEEKS_PER_PAGE)
    pages = max(1, -(-shown.total // WEEKS_PER_PAGE))
    return templates.TemplateResponse(request, "portal_feedback.html", {
        "active": "portal-feedback", "breakdown": breakdown, "recommended": recommended, "weeks": shown.weeks,
        "k": shown.min_students, "page": page, "pages": pages, "growth_weeks": GROWTH_WEEKS,
        "shown_feedback": sum(w.feedback_count for w in recent.weeks if not w.suppressed),
        "labels": growth.DIMENSION_LABELS, "long": _long,
    })


@router.get("/portal/resources", response_class=HTMLResponse)
def portal_resources(request: Request, db: DbDep, actor: TutorActor) -> Response:
    tutor = _tutor(db, actor)
    _breakdown, recommended, _recent = _growth(db, tutor.tutor_id)
    return templates.TemplateResponse(request, "portal_resources.html", {
        "active": "portal-resources", "recommended": recommended, "areas": growth.modules_by_skill(),
        "guides": growth.GUIDES,
    })


