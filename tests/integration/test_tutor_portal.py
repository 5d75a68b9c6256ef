"""The tutor portal pages (web/portal_views.py) over the real app, on SQLite and PostgreSQL.

The world is Emily, a Mathematics tutor with five weeks of sessions and feedback (one week from only two students,
which must show as a count), a tier history ending "At Risk" and a critical churn prediction (which must never
show), students with distinctive names (which must never show), and ten Mathematics peers for the comparison.
seed_portal_world is shared with tests/browser/test_portal_pages.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.feedback.models import StudentFeedback
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tiers.models import TierHistory
from domain.tutors import growth, portal
from domain.tutors.models import Tutor
from tests.integration.auth_helpers import account, api_client, bearer, build_app

PAGES = ("/portal", "/portal/feedback", "/portal/resources")
# (week back from this one, student index, overall rating, late minutes, tutor-initiated reschedule)
PLAN: tuple[tuple[int, int, int | None, int, bool], ...] = (
    (0, 0, 5, 0, False), (0, 1, 5, 5, False), (0, 2, 4, 0, False),               # shown: 4.67, 2 of 3 on time
    (1, 0, 4, 0, False), (1, 1, 2, 0, False),                                    # two students: withheld
    (2, 0, 5, 0, False), (2, 1, 4, 0, False), (2, 2, 5, 0, False), (2, 3, 4, 0, False),
    (3, 1, 5, 0, False), (3, 2, 5, 0, False), (3, 3, 5, 0, False),
    (4, 0, 4, 0, False), (4, 2, 4, 0, False), (4, 4, 4, 0, False), (4, 4, None, 0, True),  # the streak stops here
)
MONTH_AVERAGE = "4.54"  # (14 + 18 + 15 + 12) / 13: the withheld week (4 and 2) left out, else it would be 4.33
PEER_RATINGS = (3.0, 3.5, 4.0, 4.2, 4.4, 4.5, 4.6, 4.8, 4.9, 5.0)  # six below 4.54: higher than 60%


@dataclass
class PortalWorld:
    tutor_id: str
    user_id: str
    students: dict[str, str] = field(default_factory=dict)  # id -> name
    peers: list[str] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)

    def forbidden(self) -> list[str]:
        words = ["churn", "risk", "critical", "at risk"]
        for sid, name in self.students.items():
            words += [sid, name, *name.split()]
        return [w.lower() for w in words]


def _when(now: datetime, weeks_back: int, n: int) -> datetime:
    """A time in the ISO week ``weeks_back`` before now's, before now, the n-th of that week's sessions."""
    monday = datetime.combine(portal.week_start(now), datetime.min.time(), tzinfo=UTC)
    if weeks_back == 0:
        return monday + (now - monday) * (0.1 + 0.2 * n)  # this week: between Monday 00:00 and now
    return monday - timedelta(weeks=weeks_back) + timedelta(days=1, hours=9 + 2 * n)


def seed_portal_world(engine: Engine, *, tag: str = "portal", now: datetime | None = None) -> PortalWorld:
    now = now or utcnow()
    w = PortalWorld(tutor_id=f"tutor_{tag}_emily", user_id=f"u_{tag}_emily", now=now)
    names = ("Xavier Quillfeather", "Ottoline Brackwater", "Percival Thistlewood", "Imogen Fenwright",
             "Barnaby Gorsemoor")
    w.students = {f"stu_{tag}_{i}": name for i, name in enumerate(names)}
    ids = list(w.students)
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id=w.tutor_id, name="Emily Tran", email=f"{tag}.emily@example.test",
                     onboarding_date=date(2025, 9, 1), subjects=["Mathematics", "Physics"]))
        db.add(Tutor(tutor_id=f"tutor_{tag}_chem", name="Chem Peer", email=f"{tag}.chem@example.test",
                     onboarding_date=date(2025, 9, 1), subjects=["Chemistry"]))
        db.add(Tutor(tutor_id=f"tutor_{tag}_gone", name="Gone Peer", email=f"{tag}.gone@example.test",
                     onboarding_date=date(2025, 9, 1), subjects=["Mathematics"], status="inactive"))
        w.peers = [f"tutor_{tag}_peer{i}" for i in range(len(PEER_RATINGS))]
        for i, peer in enumerate(w.peers):
            db.add(Tutor(tutor_id=peer, name=f"Peer {i}", email=f"{tag}.peer{i}@example.test",
                         onboarding_date=date(2025, 9, 1), subjects=["Mathematics"]))
        for sid, name in w.students.items():
            db.add(Student(student_id=sid, name=name, age=15, grade_level="10", subjects_interested=["Mathematics"]))
        db.flush()
        counts: dict[int, int] = {}
        for n, (back, who, rating, late, resched) in enumerate(PLAN):
            nth = counts[back] = counts.get(back, -1) + 1
            start = _when(now, back, nth)
            sid = f"s_{tag}_{n}"
            db.add(TutoringSession(session_id=sid, tutor_id=w.tutor_id, student_id=ids[who], session_number=n + 1,
                                   scheduled_start=start, actual_start=start + timedelta(minutes=late),
                                   duration_minutes=60, subject="Mathematics", late_start_minutes=late,
                                   tutor_initiated_reschedule=resched, student_rating=None))
            db.flush()
            if rating is not None:
                text = (f"W1-SECRET-MARKER {n}" if back == 1 else
                        f"Thanks so much! {names[who]}" if (back, nth) == (2, 0) else f"Clear steps, week {back}")
                db.add(StudentFeedback(
                    feedback_id=f"fb_{sid}", session_id=sid, student_id=ids[who], tutor_id=w.tutor_id,
                    overall_rating=rating, subject_knowledge_rating=5, communication_rating=5,
                    patience_rating=1 if back == 1 else 3, engagement_rating=5, would_recommend=True,
                    improvement_areas=["Wasn't patient or encouraging"] if back == 0 and nth == 2 else [],
                    free_text_feedback=text, submitted_at=min(start + timedelta(hours=1), now - timedelta(seconds=1))))
        for i, (peer, rating) in enumerate(zip(w.peers, PEER_RATINGS, strict=True)):
            start = _when(now, 2, 0) + timedelta(minutes=i + 1)
            db.add(TutoringSession(session_id=f"s_{tag}_peer{i}", tutor_id=peer, student_id=ids[0], session_number=1,
                                   scheduled_start=start, duration_minutes=60, subject="Mathematics",
                                   student_rating=rating))
        for other, rating in ((f"tutor_{tag}_chem", 1.0), (f"tutor_{tag}_gone", 1.0)):
            db.add(TutoringSession(session_id=f"s_{other}", tutor_id=other, student_id=ids[0], session_number=1,
                                   scheduled_start=_when(now, 2, 1), duration_minutes=60, subject="Mathematics",
                                   student_rating=rating))
        # What the evaluations write about a tutor at critical churn risk: the portal must show none of it.
        db.add(TierHistory(tutor_id=w.tutor_id, assigned_at=now - timedelta(days=40), tier="Strong",
                           source="monthly_review", reasons=[], rules_version="scoring@v1"))
        db.add(TierHistory(tutor_id=w.tutor_id, assigned_at=now - timedelta(days=3), tier="At Risk",
                           previous_tier="Strong", source="evaluation", reasons=["churn risk Critical"],
                           rules_version="scoring@v1"))
        db.add(ChurnPrediction(tutor_id=w.tutor_id, prediction_date=now.date(), as_of=now, churn_score=91.0,
                               risk_level="Critical", model_version="portal-test",
                               flags=[{"name": "rating_drop", "summary": "Critical churn risk"}]))
    account(engine, "tutor", user_id=w.user_id, tutor_id=w.tutor_id, name="Emily Tran")
    return w


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _section(html: str, element_id: str) -> str:
    match = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element #{element_id}"
    return _text(match.group(2))


async def test_portal_pages_show_the_tutors_own_figures_and_nothing_else(settings: Settings, engine: Engine) -> None:
    w = seed_portal_world(engine)
    app = build_app(settings)
    async with api_client(app) as client:
        pages = {}
        for path in PAGES:
            response = await client.get(path, headers=bearer(engine, w.user_id))
            assert response.status_code == 200, (path, response.text[:300])
            pages[path] = response.text
            leaks = [word for word in w.forbidden() if word in response.text.lower()]
            assert not leaks, f"{path} shows {leaks}"

        home = pages["/portal"]
        assert "Welcome back, Emily!" in home
        assert "Performance tier: Growing" in _text(home)  # "At Risk" merged into the growth label
        assert _section(home, "week-sessions").startswith("Sessions held 3 Last week: 2 +1 vs last week")
        assert "4.67 / 5" in _section(home, "week-rating")
        assert "Last week: withheld (fewer than 3 students)" in _section(home, "week-rating")
        assert "67%" in _section(home, "week-on-time")
        assert f"average rating {MONTH_AVERAGE} / 5" in _section(home, "last-month")
        assert "16 sessions held" in _section(home, "last-month") and "5 students helped" in _section(home, "last-month")
        table = _section(home, "weekly-figures")
        assert table.count("withheld") == 1 and "4.50 / 5" in table and "5.00 / 5" in table
        assert 'data-chart-config=\'{"data": {"datasets": [{"backgroundColor"' in home  # charts.js convention
        assert '<script src="/static/charts.js" defer></script>' in home
        earned = {b: 'class="achievement earned" id="badge-' + b + '"' in home
                  for b in ("sessions_10", "sessions_100", "sessions_500", "rating_48", "no_reschedule_4")}
        assert earned == {"sessions_10": True, "sessions_100": False, "sessions_500": False, "rating_48": False,
                          "no_reschedule_4": True}
        assert "16 of 100 sessions held" in _section(home, "badge-sessions_100")
        assert "higher than 60% of 10 tutors who mainly teach Mathematics" in _section(home, "peer-comparison")
        assert "Patience and encouraging feedback" in home  # the weakest dimension's module

        feedback = pages["/portal/feedback"]
        weeks = re.findall(r'id="week-(\d{4}-W\d{2})"', feedback)
        assert len(weeks) == 5 and weeks == sorted(weeks, reverse=True)
        hidden_week = portal.week_start(w.now) - timedelta(weeks=1)
        hidden = _section(feedback, f"week-{hidden_week.isocalendar()[0]}-W{hidden_week.isocalendar()[1]:02d}")
        assert "2 feedbacks received" in hidden and "only the count is shown" in hidden
        assert "W1-SECRET-MARKER" not in feedback  # the suppressed week's words are not on the page at all
        assert "Thanks so much! [name]" in feedback  # a student signing their name is redacted
        assert "Patience 3.00" in _section(feedback, "dimension-patience")  # week 1's patience 1s left out
        assert _section(feedback, "dimension-patience").endswith("13")
        training = _section(feedback, "recommended-training")
        assert "Patience and encouraging feedback" in training and "from 3.00 to 3.2" in training
        assert "Engagement" not in training  # 5.00: a strength, no module for it

        resources = pages["/portal/resources"]
        assert 'href="#module-patience_and_feedback"' in resources and 'id="module-patience_and_feedback"' in resources
        assert "http://" not in _text(resources) and "https://" not in resources  # no links off the site

        # Nine peers are too few to compare against: the comparison disappears.
        with session_scope(engine) as db:
            db.execute(update(Tutor).where(Tutor.tutor_id == w.peers[0]).values(status="inactive"))
        again = await client.get("/portal", headers=bearer(engine, w.user_id))
        assert again.status_code == 200 and 'id="peer-comparison"' not in again.text


async def test_only_tutors_may_open_the_portal(settings: Settings, engine: Engine) -> None:
    w = seed_portal_world(engine)
    app = build_app(settings)
    others = {role: account(engine, role, user_id=f"u_portal_{role}", student_id=next(iter(w.students))
                            if role == "student" else None) for role in ("ops_manager", "people_ops", "admin",
                                                                          "student")}
    async with api_client(app) as client:
        for path in PAGES:
            for role, user_id in others.items():
                response = await client.get(path, headers=bearer(engine, user_id))
                assert response.status_code == 403 and "Not allowed" in response.text, (path, role)
            anonymous = await client.get(path)
            assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/login?next={path}"
        bad = await client.get("/portal/feedback?page=0", headers=bearer(engine, w.user_id))
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "page"]
        beyond = await client.get("/portal/feedback?page=2", headers=bearer(engine, w.user_id))
        assert beyond.status_code == 200 and "No more feedback" in beyond.text


def test_badge_streak_and_training_rules() -> None:
    """The rule tables' edges, without a database: every dimension has a module, and the streak forgives an empty
    week just begun but not an empty week before it."""
    assert set(growth.TRAINING_FOR_DIMENSION) == set(growth.DIMENSION_LABELS)
    assert all(k in growth.MODULES_BY_KEY for k in growth.TRAINING_FOR_DIMENSION.values())

    def week(n: int, sessions: int, reschedules: int = 0) -> portal.WeekFigures:
        return portal.WeekFigures(week=f"W{n}", week_start=date(2026, 1, 5) + timedelta(weeks=n),
                                  sessions_scheduled=sessions, sessions_held=sessions, reschedules=reschedules,
                                  on_time_starts=sessions, average_rating=None, rating_hidden=False)
    assert portal.no_reschedule_streak([week(0, 2), week(1, 3), week(2, 1), week(3, 2), week(4, 0)]) == 4
    assert portal.no_reschedule_streak([week(0, 2), week(1, 0), week(2, 1), week(3, 2)]) == 2
    assert portal.no_reschedule_streak([week(0, 2), week(1, 3, reschedules=1), week(2, 1)]) == 1
    month = portal.WindowSummary(since=date(2026, 1, 5), sessions_held=40, students_helped=12, average_rating=4.85,
                                 rating_hidden=False)
    got = {b.rule.key: b.earned for b in portal.badges(held=500, rating=month, streak=3)}
    assert got == {"sessions_10": True, "sessions_100": True, "sessions_500": True, "rating_48": True,
                   "no_reschedule_4": False}
    withheld = portal.WindowSummary(since=date(2026, 1, 5), sessions_held=4, students_helped=2, average_rating=None,
                                    rating_hidden=True)
    rating_badge = portal.badges(held=4, rating=withheld, streak=0)[3]
    assert not rating_badge.earned and "at least 3 students" in rating_badge.progress
    scores = [growth.DimensionScore(d, growth.DIMENSION_LABELS[d], avg, 10) for d, avg in
              (("subject_knowledge", 4.9), ("communication", 4.05), ("patience", 4.1), ("engagement", 4.3),
               ("helpfulness", None))]
    assert [s.dimension for s in growth.weakest(scores)] == ["communication", "patience"]
    assert growth.goal_for(4.05) == 4.3 and growth.goal_for(4.9) == 5.0
