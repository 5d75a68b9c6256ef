"""The tutor profile deep dive (PRD UI 1.2): everything the page shows about one tutor, read in one transaction.

Staff-only (it carries churn scores, risk and student feedback). The score, metrics and intervention history come
from the same services as the JSON API (/api/v1/tutors/{id}/score, /metrics, /interventions), so the page and the
API never disagree; what no API reads yet (feedback with its session, the tutor's message log, weekly drill-down
series) is read here. Student names and ids are left out: the page does not need them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from domain.feedback.models import StudentFeedback
from domain.interventions import queries
from domain.interventions.models import OutboxMessage
from domain.metrics import service as metrics_service
from domain.metrics.models import TutorPerformanceMetric
from domain.scoring.service import tenure_days
from domain.sessions.models import TutoringSession
from domain.tutors import notes as notes_service
from domain.tutors import service as tutor_service
from domain.tutors.models import Tutor
from rules.scoring import ScoringRuleSet, active_scoring_rules

WEEKS = 12
HISTORY_LIMIT = 25
FEEDBACK_LIMIT = 10
MESSAGE_LIMIT = 25
NOTE_LIMIT = 50
DIMENSIONS = (("subject_knowledge_rating", "Subject knowledge"), ("communication_rating", "Communication"),
              ("patience_rating", "Patience"), ("engagement_rating", "Engagement"),
              ("helpfulness_rating", "Helpfulness"))


@dataclass(frozen=True)
class MetricLine:
    """One 30-day metric against its threshold; ``below`` is None when it has no threshold or no data."""

    key: str
    label: str
    value: str
    detail: str | None
    target: str | None
    below: bool | None


@dataclass(frozen=True)
class FlagView:
    name: str
    summary: str | None
    bump: float | None
    triggered_at: datetime | None


@dataclass(frozen=True)
class WeekPoint:
    """One week of the drill-down series: the 7-day metrics row of the week's last day."""

    end: date
    sessions_completed: int
    sessions_scheduled: int
    no_shows: int
    reschedules: int
    reschedule_rate: float | None
    avg_rating: float | None


@dataclass(frozen=True)
class FeedbackView:
    """A feedback as staff see it here: ratings, dimensions, date and comment; no student name or id."""

    feedback_id: str
    submitted_at: datetime
    session_date: datetime
    subject: str
    first_session: bool
    overall_rating: int
    dimensions: list[tuple[str, int]]
    would_recommend: bool | None
    improvement_areas: list[str]
    comment: str | None


@dataclass
class TutorProfile:
    tutor: Tutor
    tenure_days: int
    score: tutor_service.ScoreView | None  # None: never evaluated
    flags: list[FlagView]
    drives_interventions: str
    metrics_row: TutorPerformanceMetric | None
    metrics: list[MetricLine]
    weeks: list[WeekPoint]
    cases: list[queries.CaseView]
    cases_total: int
    feedback: list[FeedbackView]
    feedback_total: int
    messages: list[OutboxMessage]
    messages_total: int
    notes: list[notes_service.NoteView]
    notes_total: int


def profile(db: Session, tutor_id: str, *, now: datetime, rules_dir: Path) -> TutorProfile:
    """Raises tutor_service.NotFound for an unknown tutor."""
    tutor = tutor_service.require_tutor(db, tutor_id)
    rules = active_scoring_rules(rules_dir).spec
    try:
        score = tutor_service.score(db, tutor_id, tier_window=f"{rules.tiers.window_days}day")
    except tutor_service.NotFound:
        score = None  # the tutor exists (checked above): only the prediction is missing
    latest, _ = tutor_service.metrics_history(db, tutor_id, "30day", limit=1)
    cases, cases_total = queries.tutor_history(db, tutor_id, limit=HISTORY_LIMIT)
    feedback, feedback_total = recent_feedback(db, tutor_id, limit=FEEDBACK_LIMIT)
    messages, messages_total = message_log(db, tutor_id, limit=MESSAGE_LIMIT)
    notes, notes_total = notes_service.list_notes(db, tutor_id, limit=NOTE_LIMIT)
    return TutorProfile(
        tutor=tutor, tenure_days=tenure_days(tutor.onboarding_date, now), score=score,
        flags=flags(score.flags) if score else [],
        drives_interventions=rules.model.drives_interventions, metrics_row=latest,
        metrics=metric_lines(latest, tutor, rules), weeks=weekly_series(db, tutor_id), cases=cases,
        cases_total=cases_total, feedback=feedback, feedback_total=feedback_total, messages=messages,
        messages_total=messages_total, notes=notes, notes_total=notes_total,
    )


def _instant(value: object) -> datetime | None:
    # Flags are stored as JSON: their times come back as ISO strings.
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed


def flags(items: list[dict[str, Any]]) -> list[FlagView]:
    return [FlagView(name=str(f["name"]), summary=f.get("summary"), bump=f.get("bump"),
                     triggered_at=_instant(f.get("triggered_at"))) for f in items]


# --- 30-day metrics against their thresholds ---------------------------------------------------------------

def _pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def _baseline(row: TutorPerformanceMetric, tutor: Tutor) -> str | None:
    expected = tutor.baseline_sessions_per_week * 30 / 7
    if expected <= 0:
        return None
    change = row.sessions_completed / expected - 1
    arrow = "↑" if change > 0 else "↓" if change < 0 else "="
    return f"{arrow} {abs(change):.0%} vs. a baseline of {expected:.0f} ({tutor.baseline_sessions_per_week:g} a week)"


def metric_lines(row: TutorPerformanceMetric | None, tutor: Tutor, rules: ScoringRuleSet) -> list[MetricLine]:
    """The PRD's six core metrics (and sessions against the tutor's baseline) from the latest 30-day row."""
    if row is None:
        return []
    t = rules.thresholds
    # The same check the evaluation counts as "metrics below threshold"; the row has the fields it reads.
    below = set(metrics_service.below_thresholds(row, rules))  # type: ignore[arg-type]
    reschedules = round((row.reschedule_rate or 0) * row.sessions_scheduled)

    def line(key: str, label: str, value: str, detail: str | None, target: str | None) -> MetricLine:
        has_data = getattr(row, key, None) is not None
        return MetricLine(key, label, value, detail, target, (key in below) if target and has_data else None)

    return [
        line("sessions_completed", "Sessions completed", str(row.sessions_completed),
             _baseline(row, tutor), None),
        line("avg_rating", "Average rating", "—" if row.avg_rating is None else f"{row.avg_rating:.1f} / 5",
             None, f"at least {t.avg_rating_min:g}"),
        line("first_session_success_rate", "First-session success", _pct(row.first_session_success_rate),
             f"{row.first_session_count} first session{'s' if row.first_session_count != 1 else ''}",
             f"at least {t.first_session_success_min:.0%}"),
        line("reschedule_rate", "Reschedule rate", _pct(row.reschedule_rate),
             f"{reschedules} of {row.sessions_scheduled} sessions", f"at most {t.reschedule_rate_max:.0%}"),
        line("no_show_rate", "No-shows", f"{row.no_show_count} ({_pct(row.no_show_rate, 1)})",
             f"of {row.sessions_scheduled} sessions", f"at most {t.no_show_rate_max:.0%}"),
        line("engagement_score", "Engagement score", _pct(row.engagement_score), None,
             f"at least {t.engagement_min:.0%}"),
        line("learning_objectives_met_pct", "Learning objectives met", _pct(row.learning_objectives_met_pct), None,
             f"at least {t.learning_objectives_min:.0%}"),
    ]


# --- drill-down series -------------------------------------------------------------------------------------

def weekly_series(db: Session, tutor_id: str, *, weeks: int = WEEKS) -> list[WeekPoint]:
    """Oldest first: the 7-day metrics rows of every 7th day back from the newest, so the weeks do not overlap.

    A week whose row is missing (no evaluation that day) is left out rather than filled with a neighbour's.
    """
    latest, page = tutor_service.metrics_history(db, tutor_id, "7day", limit=weeks * 7)
    if latest is None:
        return []
    points = []
    for row in page.items:
        if (latest.calculation_date - row.calculation_date).days % 7:
            continue
        scheduled = row.sessions_scheduled
        points.append(WeekPoint(
            end=row.calculation_date, sessions_completed=row.sessions_completed, sessions_scheduled=scheduled,
            no_shows=row.no_show_count, reschedules=round((row.reschedule_rate or 0) * scheduled),
            reschedule_rate=row.reschedule_rate, avg_rating=row.avg_rating))
    return points[::-1]


# --- feedback and messages ---------------------------------------------------------------------------------

def recent_feedback(db: Session, tutor_id: str, *, limit: int, offset: int = 0) -> tuple[list[FeedbackView], int]:
    """The tutor's feedback, newest submission first, with the session's subject and date."""
    f, s = StudentFeedback, TutoringSession
    total = db.execute(select(func.count()).select_from(f).where(f.tutor_id == tutor_id)).scalar_one()
    stmt = (select(f, s.subject, s.scheduled_start).join(s, s.session_id == f.session_id)
            .where(f.tutor_id == tutor_id).order_by(f.submitted_at.desc(), f.feedback_id)
            .limit(limit).offset(offset))
    items = [
        FeedbackView(
            feedback_id=row.feedback_id, submitted_at=row.submitted_at, session_date=start, subject=subject,
            first_session=row.is_first_session, overall_rating=row.overall_rating,
            dimensions=[(label, getattr(row, name)) for name, label in DIMENSIONS if getattr(row, name) is not None],
            would_recommend=row.would_recommend, improvement_areas=list(row.improvement_areas or []),
            comment=row.free_text_feedback)
        for row, subject, start in db.execute(stmt)
    ]
    return items, total


def message_log(db: Session, tutor_id: str, *, limit: int) -> tuple[list[OutboxMessage], int]:
    """The outbox rows of the tutor's cases, newest first: messages to the tutor and staff notices about them.

    Rows of no case are left out: those are emails to students (feedback reminders about the tutor's sessions),
    addressed to a student and not part of the tutor's communication.
    """
    o = OutboxMessage
    where = (o.tutor_id == tutor_id, o.intervention_id.is_not(None))
    total = db.execute(select(func.count()).select_from(o).where(*where)).scalar_one()
    rows = db.execute(select(o).where(*where).order_by(o.created_at.desc(), o.message_id).limit(limit)).scalars()
    return list(rows), total
