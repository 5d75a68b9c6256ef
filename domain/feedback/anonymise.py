"""Feedback as a tutor may see it: no student name or id, and nothing that singles one student out.

A tutor knows whom they taught and when, so anything finer than "this week, from these students" re-identifies
the author. Feedback is therefore grouped by ISO week (UTC, by submission time). A week with fewer than
K_MIN_STUDENTS distinct authors shows only how many feedbacks arrived; a week with at least that many shows each
item's ratings, dimensions, improvement areas and text, dated by the week only and shuffled by a keyed hash, so
neither order nor timestamps point at a session. The first-session flag is left out too: a tutor has few first
sessions in a week, and the flag would name the new student.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlmodel import Session

from core.keys import derive, process_keys
from domain.feedback.models import StudentFeedback
from domain.sessions.service import IN_CHUNK
from domain.students.models import Student

# The small-count threshold. A module constant rather than a rules file: the rules files are versioned, edited
# and dry-run through the admin pages, and this is a privacy floor an admin should not lower from a form.
K_MIN_STUDENTS = 3

DIMENSIONS = ("subject_knowledge", "communication", "patience", "engagement", "helpfulness")
REDACTED = "[name]"


@dataclass(frozen=True)
class FeedbackItem:
    overall_rating: int
    dimensions: dict[str, int | None]
    would_recommend: bool | None
    improvement_areas: list[str]
    text: str | None


@dataclass(frozen=True)
class FeedbackWeek:
    week: str  # ISO week, e.g. "2026-W47"
    week_start: date  # its Monday
    feedback_count: int
    suppressed: bool  # fewer than K distinct students: counts only
    average_rating: float | None = None
    dimension_averages: dict[str, float | None] = field(default_factory=dict)
    items: list[FeedbackItem] = field(default_factory=list)


@dataclass(frozen=True)
class WeekPage:
    weeks: list[FeedbackWeek]
    total: int  # weeks with any feedback
    min_students: int


def iso_week(ts: datetime) -> tuple[int, int]:
    year, week, _ = ts.astimezone(UTC).isocalendar()
    return year, week


def order_key() -> bytes:
    return derive(process_keys().secret, "feedback-order")


def _shuffle_rank(key: bytes, feedback_id: str) -> str:
    # Keyed, so the order cannot be recomputed from the ids (which may encode the session and its time), and
    # stable, so reloading the page gives nothing new to compare.
    return hmac.new(key, feedback_id.encode(), hashlib.sha256).hexdigest()


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def redact(text: str | None, names: Sequence[str]) -> str | None:
    """The text with the author's name (whole and each part of two letters or more) replaced, whole words only."""
    if not text:
        return text
    parts = sorted({p for n in names for p in [n.strip(), *n.split()] if len(p.strip()) >= 2}, key=len, reverse=True)
    if not parts:
        return text
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in parts) + r")\b", re.IGNORECASE)
    return pattern.sub(REDACTED, text)


def _rows(db: Session, ids: Sequence[str]) -> list[StudentFeedback]:
    out: list[StudentFeedback] = []
    for i in range(0, len(ids), IN_CHUNK):
        out.extend(db.execute(select(StudentFeedback).where(
            StudentFeedback.feedback_id.in_(ids[i:i + IN_CHUNK]))).scalars())
    return out


def _student_names(db: Session, student_ids: set[str]) -> dict[str, str]:
    ids = sorted(student_ids)
    names: dict[str, str] = {}
    for i in range(0, len(ids), IN_CHUNK):
        names.update((sid, name) for sid, name in db.execute(select(Student.student_id, Student.name).where(
            Student.student_id.in_(ids[i:i + IN_CHUNK]))))
    return names


def _item(row: StudentFeedback, author_name: str | None) -> FeedbackItem:
    dims = {d: getattr(row, f"{d}_rating") for d in DIMENSIONS}
    return FeedbackItem(overall_rating=row.overall_rating, dimensions=dims, would_recommend=row.would_recommend,
                        improvement_areas=list(row.improvement_areas or []),
                        text=redact(row.free_text_feedback, [author_name] if author_name else []))


def _shown_week(label: str, start: date, rows: list[StudentFeedback], names: dict[str, str], key: bytes
                ) -> FeedbackWeek:
    rows = sorted(rows, key=lambda r: _shuffle_rank(key, r.feedback_id))
    dims = {d: _mean([v for r in rows if (v := getattr(r, f"{d}_rating")) is not None]) for d in DIMENSIONS}
    return FeedbackWeek(week=label, week_start=start, feedback_count=len(rows), suppressed=False,
                        average_rating=_mean([r.overall_rating for r in rows]), dimension_averages=dims,
                        items=[_item(r, names.get(r.student_id)) for r in rows])


def tutor_feedback(db: Session, tutor_id: str, *, limit: int = 12, offset: int = 0, k: int = K_MIN_STUDENTS,
                   key: bytes | None = None) -> WeekPage:
    """The tutor's feedback by week, newest week first; ``limit``/``offset`` page over weeks with feedback."""
    f = StudentFeedback
    by_week: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    for feedback_id, student_id, submitted_at in db.execute(
            select(f.feedback_id, f.student_id, f.submitted_at).where(f.tutor_id == tutor_id)):
        by_week[iso_week(submitted_at)].append((feedback_id, student_id))
    ordered = sorted(by_week, reverse=True)
    page = ordered[offset:offset + limit]
    shown = [w for w in page if len({s for _, s in by_week[w]}) >= k]
    rows_by_week: dict[tuple[int, int], list[StudentFeedback]] = defaultdict(list)
    wanted = [fid for w in shown for fid, _ in by_week[w]]
    rows = _rows(db, wanted)
    for row in rows:
        rows_by_week[iso_week(row.submitted_at)].append(row)
    names = _student_names(db, {r.student_id for r in rows})
    key = key or order_key()
    weeks = []
    for year, week in page:
        label, start = f"{year}-W{week:02d}", date.fromisocalendar(year, week, 1)
        if (year, week) in rows_by_week:
            weeks.append(_shown_week(label, start, rows_by_week[(year, week)], names, key))
        else:
            weeks.append(FeedbackWeek(week=label, week_start=start, feedback_count=len(by_week[(year, week)]),
                                      suppressed=True))
    return WeekPage(weeks=weeks, total=len(ordered), min_students=k)
