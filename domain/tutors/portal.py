"""A tutor's own figures for the tutor portal (web/portal_views.py): weekly figures, badges, peer comparison.

Everything here is about one tutor and is read from their own sessions and feedback, with the same privacy floor
as the self-service API (domain.feedback.anonymise): a rating average is withheld when fewer than K distinct
students stand behind it, because a tutor knows whom they taught and when. Student ids are read only to count
distinct raters and never leave this module. Nothing here reads churn scores, risk levels or model output.

A session's rating is the student's detailed feedback rating if one was submitted, else the feed's quick rating
(the same rule as domain.metrics.history); only held sessions (not no-shows) are rated. Ratings are grouped by the
ISO week of the session, and every longer figure is built from whole weeks whose own average is shown: a figure
over a window cutting a week in two, or including a withheld week, would let the tutor subtract one shown figure
from another and recover ratings the privacy floor withholds.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Float, and_, cast, func, select
from sqlmodel import Session

from domain.feedback.anonymise import K_MIN_STUDENTS, iso_week
from domain.feedback.models import StudentFeedback
from domain.sessions.models import TutoringSession
from domain.sessions.service import IN_CHUNK
from domain.tutors.models import Tutor, TutorStatus

CHART_WEEKS = 12  # weeks the trend charts and their table show, this week included
LOOKBACK_WEEKS = 26  # weeks read for the no-reschedule streak: it counts up to this many
# "The last month": this week and the four before it (28 to 35 days), whole weeks for the reason above.
WINDOW_WEEKS = 5
# The PRD's tip reads "top tutors start sessions within 2 min": a start within this grace counts as on time.
ON_TIME_GRACE_MINUTES = 2
# The peer comparison is shown only against at least this many other tutors: fewer would say too much about
# each of them, and a percentile of a handful of people means little.
MIN_PEERS = 10


@dataclass(frozen=True)
class WeekFigures:
    week: str  # ISO week, e.g. "2026-W48"
    week_start: date  # its Monday (UTC)
    sessions_scheduled: int
    sessions_held: int
    reschedules: int  # tutor-initiated
    on_time_starts: int  # held sessions started within the grace
    average_rating: float | None  # None when no rating, or withheld (rating_hidden)
    rating_hidden: bool

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time_starts / self.sessions_held if self.sessions_held else None


@dataclass(frozen=True)
class WindowSummary:
    since: date  # the Monday the window starts on
    sessions_held: int
    students_helped: int
    average_rating: float | None
    rating_hidden: bool


@dataclass(frozen=True)
class BadgeRule:
    """One badge, as data: ``measure`` names what it counts, ``target`` the level that earns it."""

    key: str
    title: str
    measure: str  # sessions_held | rating_month | no_reschedule_weeks
    target: float
    description: str


@dataclass(frozen=True)
class Badge:
    rule: BadgeRule
    earned: bool
    progress: str  # where the tutor stands, in words: shown whether or not it is earned


@dataclass(frozen=True)
class PeerComparison:
    subject: str
    peers: int
    higher_than_pct: int  # share of peers whose average over the window is below the tutor's


@dataclass(frozen=True)
class Dashboard:
    weeks: list[WeekFigures]  # oldest first, CHART_WEEKS long, the current (unfinished) week last
    this_week: WeekFigures
    last_week: WeekFigures
    last_month: WindowSummary
    total_held: int
    streak_weeks: int
    badges: list[Badge]
    peers: PeerComparison | None


# The badge table. Constants rather than a rules file: the rule files are versioned and edited through the admin
# pages for decisions about tutors, while these are encouragement shown to the tutor alone and decide nothing.
BADGES: tuple[BadgeRule, ...] = (
    BadgeRule("sessions_10", "First 10 sessions", "sessions_held", 10, "Held your first 10 sessions."),
    BadgeRule("sessions_100", "100 sessions", "sessions_held", 100, "Held 100 sessions."),
    BadgeRule("sessions_500", "500 sessions", "sessions_held", 500, "Held 500 sessions."),
    BadgeRule("rating_48", "4.8+ average rating", "rating_month", 4.8,
              "Averaged 4.8 or more over the last month."),
    BadgeRule("no_reschedule_4", "4-week no-reschedule streak", "no_reschedule_weeks", 4,
              "Four weeks in a row with sessions and none rescheduled by you."),
)


@dataclass(frozen=True)
class _Row:
    student_id: str
    start: datetime
    held: bool
    rescheduled: bool
    late_minutes: int
    rating: float | None


def week_start(ts: datetime) -> date:
    year, week = iso_week(ts)
    return date.fromisocalendar(year, week, 1)


def _rows(db: Session, tutor_id: str, *, since: datetime, now: datetime) -> list[_Row]:
    s, f = TutoringSession, StudentFeedback
    stmt = (select(s.student_id, s.scheduled_start, s.no_show, s.tutor_initiated_reschedule, s.late_start_minutes,
                   s.student_rating, f.overall_rating)
            .outerjoin(f, and_(f.session_id == s.session_id, f.submitted_at < now))
            .where(s.tutor_id == tutor_id, s.scheduled_start >= since, s.scheduled_start < now))
    out = []
    for student, start, no_show, resched, late, quick, rated in db.execute(stmt):
        held = not no_show
        rating = (float(rated) if rated is not None else quick) if held else None
        out.append(_Row(student, start, held, bool(resched), late or 0, rating))
    return out


def _rating(rows: Sequence[_Row], k: int) -> tuple[float | None, bool]:
    rated = [r for r in rows if r.rating is not None]
    if not rated:
        return None, False
    if len({r.student_id for r in rated}) < k:
        return None, True
    return round(sum(r.rating for r in rated) / len(rated), 2), False  # type: ignore[misc]


def _week(start: date, rows: Sequence[_Row], k: int) -> WeekFigures:
    year, week, _ = start.isocalendar()
    held = [r for r in rows if r.held]
    average, hidden = _rating(rows, k)
    return WeekFigures(week=f"{year}-W{week:02d}", week_start=start, sessions_scheduled=len(rows),
                       sessions_held=len(held), reschedules=sum(r.rescheduled for r in rows),
                       on_time_starts=sum(r.late_minutes <= ON_TIME_GRACE_MINUTES for r in held),
                       average_rating=average, rating_hidden=hidden)


def weekly_figures(rows: Sequence[_Row], *, now: datetime, weeks: int, k: int = K_MIN_STUDENTS) -> list[WeekFigures]:
    """One entry per ISO week, oldest first, the current week last; weeks without sessions included."""
    current = week_start(now)
    starts = [current - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    by_week: dict[date, list[_Row]] = {s: [] for s in starts}
    for row in rows:
        start = week_start(row.start)
        if start in by_week:
            by_week[start].append(row)
    return [_week(s, by_week[s], k) for s in starts]


def no_reschedule_streak(weeks: Sequence[WeekFigures]) -> int:
    """Weeks in a row, newest back, with sessions and no tutor-initiated reschedule. The current week counts once
    it has a session; while it has none it neither counts nor breaks the streak (it has only just begun)."""
    streak = 0
    for i, w in enumerate(reversed(weeks)):
        if w.reschedules:
            break
        if w.sessions_scheduled == 0:
            if i == 0:
                continue
            break
        streak += 1
    return streak


def _window(rows: Sequence[_Row], weeks: Sequence[WeekFigures]) -> WindowSummary:
    """Figures over ``weeks``; the average only from the weeks whose own average is shown (see the module doc)."""
    since = weeks[0].week_start
    withheld = {w.week_start for w in weeks if w.rating_hidden}
    recent = [(week_start(r.start), r) for r in rows if week_start(r.start) >= since]
    held = [r for _, r in recent if r.held]
    ratings = [r.rating for start, r in recent if r.rating is not None and start not in withheld]
    average = round(sum(ratings) / len(ratings), 2) if ratings else None
    return WindowSummary(since=since, sessions_held=len(held), students_helped=len({r.student_id for r in held}),
                         average_rating=average, rating_hidden=average is None and bool(withheld))


def total_held(db: Session, tutor_id: str, *, now: datetime) -> int:
    s = TutoringSession
    return db.execute(select(func.count()).where(s.tutor_id == tutor_id, s.no_show.is_(False),
                                                 s.scheduled_start < now)).scalar_one()


def _badge(rule: BadgeRule, *, held: int, rating: WindowSummary, streak: int) -> Badge:
    if rule.measure == "sessions_held":
        target = int(rule.target)
        return Badge(rule, held >= target, f"{min(held, target)} of {target} sessions held")
    if rule.measure == "rating_month":
        if rating.average_rating is None:
            why = (f"needs a week with ratings from at least {K_MIN_STUDENTS} students"
                   if rating.rating_hidden else "no rated sessions in the last month")
            return Badge(rule, False, why)
        return Badge(rule, rating.average_rating >= rule.target,
                     f"your average over the last month is {rating.average_rating:.2f}")
    if rule.measure == "no_reschedule_weeks":
        target = int(rule.target)
        return Badge(rule, streak >= target, f"current streak: {streak} week{'s' if streak != 1 else ''}")
    raise ValueError(f"badge {rule.key}: unknown measure {rule.measure!r}")


def badges(*, held: int, rating: WindowSummary, streak: int, rules: Sequence[BadgeRule] = BADGES) -> list[Badge]:
    return [_badge(r, held=held, rating=rating, streak=streak) for r in rules]


def primary_subject(tutor: Tutor) -> str | None:
    return tutor.subjects[0] if tutor.subjects else None


def _peer_averages(db: Session, tutor_ids: Sequence[str], *, since: datetime, now: datetime) -> list[float]:
    s, f = TutoringSession, StudentFeedback
    rating = func.coalesce(cast(f.overall_rating, Float), s.student_rating)
    out: list[float] = []
    for i in range(0, len(tutor_ids), IN_CHUNK):
        stmt = (select(func.avg(rating)).select_from(s)
                .outerjoin(f, and_(f.session_id == s.session_id, f.submitted_at < now))
                .where(s.tutor_id.in_(tutor_ids[i:i + IN_CHUNK]), s.no_show.is_(False),
                       s.scheduled_start >= since, s.scheduled_start < now)
                .group_by(s.tutor_id).having(func.count(rating) > 0))
        out.extend(float(v) for v in db.execute(stmt).scalars())
    return out


def peer_comparison(db: Session, tutor: Tutor, own: WindowSummary, *, now: datetime,
                    min_peers: int = MIN_PEERS) -> PeerComparison | None:
    """The share of other active tutors with the same primary subject whose average over the same window is below
    this tutor's; None when the tutor's own average is withheld or fewer than ``min_peers`` peers have one. Peers'
    averages are never shown, so theirs take every rating in the window."""
    subject = primary_subject(tutor)
    if subject is None or own.average_rating is None:
        return None
    rows = db.execute(select(Tutor.tutor_id, Tutor.subjects).where(
        Tutor.status == TutorStatus.active.value, Tutor.tutor_id != tutor.tutor_id))
    peer_ids = sorted(tid for tid, subjects in rows if subjects and subjects[0] == subject)
    if len(peer_ids) < min_peers:
        return None
    since = datetime.combine(own.since, datetime.min.time(), tzinfo=UTC)
    averages = _peer_averages(db, peer_ids, since=since, now=now)
    if len(averages) < min_peers:
        return None
    below = sum(a < own.average_rating for a in averages)
    return PeerComparison(subject=subject, peers=len(averages), higher_than_pct=100 * below // len(averages))


def dashboard(db: Session, tutor: Tutor, *, now: datetime, k: int = K_MIN_STUDENTS) -> Dashboard:
    weeks = max(LOOKBACK_WEEKS, CHART_WEEKS, WINDOW_WEEKS)
    since = datetime.combine(week_start(now) - timedelta(weeks=weeks - 1), datetime.min.time(), tzinfo=UTC)
    rows = _rows(db, tutor.tutor_id, since=since, now=now)
    lookback = weekly_figures(rows, now=now, weeks=weeks, k=k)
    month = _window(rows, lookback[-WINDOW_WEEKS:])
    held = total_held(db, tutor.tutor_id, now=now)
    streak = no_reschedule_streak(lookback)
    return Dashboard(weeks=lookback[-CHART_WEEKS:], this_week=lookback[-1], last_week=lookback[-2],
                     last_month=month, total_held=held, streak_weeks=streak,
                     badges=badges(held=held, rating=month, streak=streak),
                     peers=peer_comparison(db, tutor, month, now=now))
