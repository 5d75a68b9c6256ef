"""Read schemas of /api/v1/me (a tutor's and a student's own data) and of the public feedback link.

Every field a caller sees is named here, so nothing else on a row can slip out. The tutor-facing ones carry no
student name or id, no churn score or risk level and no model factors, by construction: those fields do not
exist on these models.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.feedback.links import IMPROVEMENT_AREAS

# Tiers as a tutor reads them. The bottom two merge: "At Risk" is assigned for a critical churn risk, so showing
# it would tell the tutor their risk level.
TutorTierLabel = Literal["Exemplary", "Strong", "Developing", "Growing"]


class WindowFigures(BaseModel):
    days: int = Field(description="Window length: 7 (this week) or 30")
    as_of: datetime = Field(description="End of the window (exclusive)")
    sessions_scheduled: int
    sessions_completed: int
    average_rating: float | None = Field(
        description="Null when fewer students than the privacy minimum rated sessions in the window")
    rating_hidden: bool = Field(description="True when the average is withheld for privacy")
    reschedule_rate: float | None = Field(description="Tutor-initiated reschedules / sessions scheduled")
    no_show_count: int


class TutorSelfSummary(BaseModel):
    first_name: str
    tier: TutorTierLabel | None = Field(description="Current tier; null before the first tier review")
    tier_since: date | None
    onboarding_date: date
    tenure_days: int
    this_week: WindowFigures | None = Field(description="The latest 7-day figures; null before the first evaluation")
    last_30_days: WindowFigures | None
    highlights: list[str] = Field(description='Milestones reached, e.g. "100 sessions"')


class TutorSessionRead(BaseModel):
    subject: str
    session_type: str
    scheduled_start: datetime
    actual_start: datetime | None
    duration_minutes: int
    first_session: bool
    late_start_minutes: int
    no_show: bool
    tutor_initiated_reschedule: bool


class TutorSessionPage(BaseModel):
    items: list[TutorSessionRead]
    total: int
    limit: int
    offset: int


class AnonymousFeedback(BaseModel):
    overall_rating: int
    dimensions: dict[str, int | None]
    would_recommend: bool | None
    improvement_areas: list[str]
    text: str | None = Field(description="The student's words, with their own name redacted")


class FeedbackWeekRead(BaseModel):
    week: str = Field(description='ISO week, e.g. "2026-W47"')
    week_start: date
    feedback_count: int
    suppressed: bool = Field(description="Fewer distinct students than the minimum: only the count is shown")
    average_rating: float | None
    dimension_averages: dict[str, float | None]
    items: list[AnonymousFeedback] = Field(description="In no particular order (not by time)")


class TutorFeedbackPage(BaseModel):
    min_students: int = Field(description="Weeks with fewer distinct students show counts only")
    items: list[FeedbackWeekRead] = Field(description="Weeks with feedback, newest first")
    total: int
    limit: int
    offset: int


class TutorTierRead(BaseModel):
    tier: TutorTierLabel
    since: date


class TutorTierPage(BaseModel):
    items: list[TutorTierRead] = Field(description="Newest first")
    total: int
    limit: int
    offset: int


class StudentFeedbackRead(BaseModel):
    feedback_id: str
    tutor_first_name: str
    subject: str
    session_date: date
    submitted_at: datetime
    first_session: bool
    overall_rating: int
    dimensions: dict[str, int | None]
    would_recommend: bool | None
    improvement_areas: list[str]
    text: str | None


class StudentFeedbackPage(BaseModel):
    items: list[StudentFeedbackRead]
    total: int
    limit: int
    offset: int


class StudentSessionRead(BaseModel):
    tutor_first_name: str
    subject: str
    scheduled_start: datetime
    actual_start: datetime | None
    duration_minutes: int
    first_session: bool
    feedback_given: bool


class StudentSessionPage(BaseModel):
    items: list[StudentSessionRead]
    total: int
    limit: int
    offset: int


# --- the public feedback link --------------------------------------------------------------------------------

class FeedbackLinkRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=64)


class FeedbackLinkRead(BaseModel):
    token: str
    path: str = Field(description="Where the form's data lives: GET it, POST the answers to it")
    expires_at: datetime
    page_path: str = Field(description="The student's feedback page (a phone-sized form): the link to email")
    reminder: Literal["scheduled", "already_scheduled", "not_scheduled"] = Field(
        description="The email reminder if no feedback arrives in time (settings.feedback_reminder_hours): "
                    "'not_scheduled' when Temporal was unreachable; ask for the link again to schedule it")


class FeedbackFormRead(BaseModel):
    tutor_first_name: str
    subject: str
    session_date: date
    first_session: bool = Field(description="Ask the first-session questions")
    already_submitted: bool
    expires_at: datetime
    improvement_options: list[str] = Field(default=list(IMPROVEMENT_AREAS))


class FeedbackSubmitted(BaseModel):
    feedback_id: str
    status: Literal["created"] = "created"
