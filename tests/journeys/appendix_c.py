"""PRD Appendix C, "Sample Tutor Journey (At-Risk -> Churned)", as the records the ingestion API receives.

    Day 1: Onboarded, 3 sessions, 4.8 avg rating
    Day 15: 12 sessions, 4.6 avg, Tier: Strong
    Day 30: 18 sessions, 4.5 avg, Tier: Strong
    Day 45: 14 sessions (-22% vs Day 30), 4.2 avg, 2 reschedules -> Tier: Developing
    Day 50: 1st no-show, engagement_score drops to 65%
    Day 55: System flags: High reschedule pattern, No-show risk
    Day 56: Automated intervention: Coaching tips sent (opened)
    Day 60: 8 sessions in last 15 days (-47% decline), avg 3.8 -> Tier: Needs Attention
    Day 62: Manager assigned retention interview (pending)
    Day 68: Last login 6 days ago -> Churn score: 78 (Critical)
    Day 70: Manager attempts contact (no response)
    Day 75: No sessions for 14 days -> Status: Churned (Inactivity)

Read as a part-time tutor teaching about one session a day: the session counts are per 15-day period
(days 1-15: 12 with 3 on day 1; 16-30: 18; 31-45: 14; 46-60: 8 held, plus the no-shows) and the averages are
the period's quick ratings. Everything here is fixed (no randomness): the same replay every run.

The tutor: a Mathematics/Physics tutor with a growing roster of regular students. Steady and well rated for
six weeks, then slipping: ratings drift down, two reschedules by day 45, a bad week (days 49-55) with four
short-notice tutor-initiated reschedules, a first no-show on day 50 and two more after it, logins thinning and
prep shrinking from day 45, a poor first session with a new student on day 52, the last session on day 61 and
the last login on day 62. Then nothing.

Day ``n`` is the UTC date ``ONBOARDING + (n - 1)`` days; every record of day ``n`` happens (arrives) on that
date. The last activity of a day ends by 21:00 UTC.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

TUTOR_ID = "tutor_appendix_c"
ONBOARDING = date(2026, 3, 2)  # a Monday; day 1
LAST_DAY = 76  # the replay runs to here: the inactivity status change is due after day 75

TUTOR = {"tutor_id": TUTOR_ID, "name": "Maya Okafor", "email": "maya.okafor@example.test", "onboarding_date": ONBOARDING,
         "subjects": ["Mathematics", "Physics"], "education_level": "MSc", "location": "Leeds, UK",
         "baseline_sessions_per_week": 7.0}

# The tutor's students, in the order they join, with the subject their pairing keeps.
STUDENTS: dict[str, tuple[str, int, str]] = {  # key -> (subject, age, grade)
    "amira": ("Mathematics", 15, "10"), "ben": ("Mathematics", 16, "11"), "chloe": ("Mathematics", 14, "9"),
    "dev": ("Physics", 16, "11"), "elena": ("Mathematics", 17, "12"), "farid": ("Physics", 15, "10"),
    "grace": ("Mathematics", 13, "8"), "hugo": ("Mathematics", 16, "11"), "isla": ("Physics", 17, "12"),
    "jonas": ("Mathematics", 15, "10"),
}

HELD, RESCHEDULED, NO_SHOW = "", "R", "NS"

# Every scheduled session: (day, start "HH:MM" UTC, student, quick rating, kind, late start minutes).
# A rescheduled session ("R") was moved by the tutor at short notice and then held at the time given here.
PLAN: tuple[tuple[int, str, str, float | None, str, int], ...] = (
    # Days 1-15: onboarded, 3 first sessions on day 1 (4.8 avg), 12 sessions averaging 4.6.
    (1, "15:00", "amira", 5.0, HELD, 1), (1, "16:30", "ben", 4.7, HELD, 2), (1, "18:00", "chloe", 4.7, HELD, 0),
    (3, "16:00", "amira", 4.6, HELD, 0), (4, "17:00", "ben", 4.4, HELD, 3), (6, "16:00", "dev", 4.7, HELD, 0),
    (8, "15:30", "chloe", 4.5, HELD, 1), (9, "17:00", "amira", 4.3, HELD, 2), (11, "16:00", "dev", 4.6, HELD, 0),
    (12, "18:00", "elena", 4.5, HELD, 0), (14, "16:00", "ben", 4.6, HELD, 1), (15, "17:00", "amira", 4.6, HELD, 0),
    # Days 16-30: the busiest stretch, 18 sessions averaging 4.5.
    (16, "16:00", "chloe", 4.6, HELD, 0), (17, "15:00", "elena", 4.4, HELD, 2), (17, "17:30", "dev", 4.7, HELD, 0),
    (18, "16:00", "amira", 4.5, HELD, 1), (20, "17:00", "farid", 4.3, HELD, 0), (21, "15:30", "ben", 4.6, HELD, 0),
    (21, "18:00", "chloe", 4.5, HELD, 3), (22, "16:00", "elena", 4.8, HELD, 0), (23, "17:00", "farid", 4.4, HELD, 1),
    (24, "15:00", "amira", 4.5, HELD, 0), (24, "17:00", "dev", 4.2, HELD, 4), (25, "16:30", "ben", 4.6, HELD, 0),
    (26, "17:00", "elena", 4.5, HELD, 2), (27, "16:00", "grace", 4.7, HELD, 0), (28, "15:00", "farid", 4.4, HELD, 1),
    (28, "17:30", "chloe", 4.5, HELD, 0), (29, "16:00", "amira", 4.3, HELD, 2), (30, "17:00", "grace", 4.5, HELD, 0),
    # Days 31-45: 14 sessions (-22%), averaging 4.2, two tutor-initiated reschedules.
    (31, "16:00", "ben", 4.5, HELD, 0), (32, "17:00", "elena", 4.4, HELD, 1), (33, "16:00", "dev", 4.4, HELD, 2),
    (35, "17:00", "farid", 4.3, HELD, 0), (36, "16:00", "hugo", 4.2, HELD, 3), (37, "17:00", "amira", 4.3, HELD, 2),
    (38, "16:00", "grace", 4.2, HELD, 0), (39, "17:00", "chloe", 4.1, HELD, 4), (40, "16:00", "hugo", 4.2, HELD, 1),
    (41, "18:00", "ben", 4.0, RESCHEDULED, 3), (42, "16:00", "elena", 4.1, HELD, 2), (43, "17:00", "isla", 4.0, HELD, 0),
    (44, "18:30", "farid", 3.9, RESCHEDULED, 5), (45, "16:00", "grace", 4.2, HELD, 2),
    # Days 46-60: 8 held sessions averaging 3.8, a bad week of reschedules (49-55), no-shows on 50, 54 and 58.
    (46, "16:00", "hugo", 4.0, HELD, 3), (47, "17:00", "amira", 4.1, HELD, 4),
    (49, "18:30", "chloe", 3.8, RESCHEDULED, 6), (50, "16:00", "dev", None, NO_SHOW, 0),
    (51, "18:30", "elena", 3.7, RESCHEDULED, 5), (52, "17:00", "jonas", 3.2, HELD, 4),
    (53, "19:00", "isla", 4.0, RESCHEDULED, 8), (54, "16:00", "farid", None, NO_SHOW, 0),
    (55, "19:00", "grace", 3.6, RESCHEDULED, 5), (57, "17:00", "hugo", 4.0, HELD, 6),
    (58, "16:00", "ben", None, NO_SHOW, 0),
    # Day 61: the last session.
    (61, "17:00", "amira", 3.4, HELD, 7),
)

# (hours the session was pushed back, hours of notice given) for each tutor-initiated reschedule, by day.
RESCHEDULE_NOTICE = {41: (24, 30.0), 44: (26, 20.0), 49: (26, 9.5), 51: (25, 6.0), 53: (27, 4.5), 55: (26, 3.0)}
RESCHEDULE_REASON = {41: "scheduling_conflict", 44: "personal", 49: "personal", 51: "personal", 53: "scheduling_conflict",
                     55: "personal"}

# Logins and "session prep" minutes. Healthy: a login every day (before teaching on teaching days) with 13-18
# minutes of prep. From day 45 fewer logins and less prep; none on the no-show days; the last on day 62.
HEALTHY_UNTIL = 44
HEALTHY_PREP = (15, 17, 14, 16, 18, 13, 15)
# Day 56 is the login that opens the automated coaching tips.
DECLINE_LOGINS = {45: 9, 46: 8, 47: 7, 49: 6, 51: 5, 52: 5, 53: 4, 55: 4, 56: 3, 57: 3, 61: 2, 62: 2}
# Replies to student/platform messages (minutes to respond): prompt while healthy, slower and rarer after.
HEALTHY_RESPONSE = (22, 35, 18, 41, 27, 30, 25)
DECLINE_RESPONSES = {45: 60, 46: 90, 47: 120, 49: 160, 51: 180, 53: 210, 55: 240, 56: 270, 57: 300, 61: 360, 62: 420}
TRAININGS = {2: "first_session_excellence", 9: "engaging_online_students"}

FIRST_NO_SHOW_DAY = 50
FLAG_DAY = 55
LAST_SESSION_DAY = 61
LAST_LOGIN_DAY = 62
CRITICAL_BY_DAY = 68
INACTIVE_DAY = 75


def day_start(day: int) -> datetime:
    return datetime.combine(ONBOARDING + timedelta(days=day - 1), time(0), tzinfo=UTC)


def _at(day: int, hhmm: str) -> datetime:
    h, m = hhmm.split(":")
    return day_start(day) + timedelta(hours=int(h), minutes=int(m))


def _iso(ts: datetime) -> str:
    return ts.isoformat()


@dataclass
class Record:
    """One payload for one endpoint, with the moment it reaches the API."""

    endpoint: str  # "sessions" | "feedback" | "events"
    arrives: datetime
    body: dict[str, Any]


@dataclass
class JourneyDay:
    day: int
    records: list[Record] = field(default_factory=list)  # in arrival order

    @property
    def date(self) -> date:
        return ONBOARDING + timedelta(days=self.day - 1)

    @property
    def next_midnight(self) -> datetime:
        """The daily rollup's as_of for this day."""
        return day_start(self.day + 1)

    def of(self, endpoint: str) -> list[dict[str, Any]]:
        return [r.body for r in self.records if r.endpoint == endpoint]

    @property
    def triggers_evaluation(self) -> bool:
        """Sessions and feedback signal the tutor's workflow (the per-session evaluation); events do not."""
        return any(r.endpoint in ("sessions", "feedback") for r in self.records)

    @property
    def last_activity(self) -> datetime | None:
        return max((r.arrives for r in self.records), default=None)


def session_id(day: int, hhmm: str, student: str) -> str:
    return f"appc_d{day:02d}_{hhmm.replace(':', '')}_{student}"


def student_id(key: str) -> str:
    return f"appc_student_{key}"


def student_records() -> list[dict[str, Any]]:
    return [{"student_id": student_id(k), "name": k.capitalize(), "age": age, "grade_level": grade,
             "subjects_interested": [subject]} for k, (subject, age, grade) in STUDENTS.items()]


def _session_engagement(rating: float) -> float:
    # The session's student engagement tracks how the session went: ~0.85 at 4.6 stars, 0.65 at 3.8.
    return round(max(0.0, min(1.0, 0.85 + (rating - 4.6) * 0.25)), 2)


def _feedback(s: dict[str, Any], rating: float, k: int, first: bool) -> dict[str, Any]:
    overall = int(rating + 0.5)  # the student's whole-star overall rating
    end = datetime.fromisoformat(s["actual_start"]) + timedelta(minutes=s["duration_minutes"])
    dims = {"subject_knowledge": min(5, overall + 1), "communication": overall, "patience": overall,
            "engagement": max(1, overall - (k % 2)), "helpfulness": overall}
    if overall <= 3:
        text, areas = "Felt rushed and the tutor did not seem prepared.", ["preparation", "pacing"]
    elif rating >= 4.6:
        text, areas = "Really clear explanations, I finally get it.", []
    else:
        text, areas = ("Helpful session." if k % 2 else None), []
    return {
        "feedback_id": f"fb_{s['session_id']}", "session_id": s["session_id"], "student_id": s["student_id"],
        "tutor_id": TUTOR_ID, "overall_rating": overall, "first_session": first, "ratings": dims,
        "would_recommend": (overall >= 4) if first else None, "improvement_areas": areas,
        "free_text_feedback": text, "timestamp": _iso(end + timedelta(minutes=10 + (7 * k) % 30)),
    }


def _sessions_and_feedback() -> list[Record]:
    out: list[Record] = []
    numbers: dict[str, int] = defaultdict(int)
    held = 0
    for day, hhmm, student, rating, kind, late in PLAN:
        numbers[student] += 1
        n = numbers[student]
        subject = STUDENTS[student][0]
        start = _at(day, hhmm)
        duration = 45 if n == 1 else 60
        no_show = kind == NO_SHOW
        body = {
            "session_id": session_id(day, hhmm, student), "tutor_id": TUTOR_ID, "student_id": student_id(student),
            "session_number": n, "scheduled_start": _iso(start),
            "actual_start": None if no_show else _iso(start + timedelta(minutes=late)),
            "duration_minutes": duration, "subject": subject, "session_type": "1-on-1",
            "tutor_initiated_reschedule": kind == RESCHEDULED, "no_show": no_show,
            "late_start_minutes": 0 if no_show else late,
            "engagement_score": None if no_show else _session_engagement(rating),
            "student_rating": rating, "learning_objectives_met": None if no_show else rating >= 3.8,
            "technical_issues": (day, student) == (24, "dev"),
        }
        # The feed reports a session when it ends (a no-show when its slot has passed).
        out.append(Record("sessions", start + timedelta(minutes=late + duration), body))
        if kind == RESCHEDULED:
            pushed, notice = RESCHEDULE_NOTICE[day]
            original = start - timedelta(hours=pushed)
            requested = original - timedelta(hours=notice)
            out.append(Record("events", requested, {
                "event_id": f"e_rs_{body['session_id']}", "tutor_id": TUTOR_ID, "event_type": "reschedule_request",
                "event_timestamp": _iso(requested),
                "metadata": {"session_id": body["session_id"], "initiated_by": "tutor", "tutor_initiated": True,
                             "lead_time_hours": notice, "reason": RESCHEDULE_REASON[day],
                             "original_start": _iso(original), "new_start": _iso(start)},
            }))
        if no_show:
            continue
        held += 1
        # Students are asked for feedback after every first session; about a third of the others leave some.
        if n == 1 or held % 3 == 0:
            fb = _feedback(body, rating, held, first=n == 1)
            out.append(Record("feedback", datetime.fromisoformat(fb["timestamp"]), fb))
    return out


def _first_start(day: int) -> datetime | None:
    starts = [_at(d, hhmm) for d, hhmm, *_ in PLAN if d == day]
    return min(starts) if starts else None


def _logins_and_messages() -> list[Record]:
    out: list[Record] = []

    def event(kind: str, ts: datetime, metadata: dict[str, Any]) -> None:
        out.append(Record("events", ts, {"event_id": f"e_{kind}_{TUTOR_ID}_{ts:%Y%m%dT%H%M}", "tutor_id": TUTOR_ID,
                                         "event_type": kind, "event_timestamp": _iso(ts), "metadata": metadata}))

    for day in range(1, LAST_DAY + 1):
        first = _first_start(day)
        if day == 1:
            event("login", _at(1, "10:00"), {"session_prep_minutes": 20})  # onboarding: profile, first lessons
        if day <= HEALTHY_UNTIL:
            prep = HEALTHY_PREP[day % len(HEALTHY_PREP)]
            response = HEALTHY_RESPONSE[day % len(HEALTHY_RESPONSE)]
        else:
            prep, response = DECLINE_LOGINS.get(day), DECLINE_RESPONSES.get(day)
        if prep is None:
            continue
        login = first - timedelta(minutes=45) if first else _at(day, "11:30")
        event("login", login, {"session_prep_minutes": prep})
        if response is not None:  # answered while logged in
            event("message_response", login + timedelta(minutes=10),
                  {"response_minutes": float(response), "channel": "student_inquiry" if day % 3 else "platform"})
        if day in TRAININGS:
            event("training_completed", _at(day, "13:30"), {"module": TRAININGS[day], "duration_minutes": 40})
    return out


def journey() -> list[JourneyDay]:
    """Days 1..LAST_DAY, each with its records in arrival order (a day with nothing has an empty list)."""
    days = {d: JourneyDay(d) for d in range(1, LAST_DAY + 1)}
    for r in sorted(_sessions_and_feedback() + _logins_and_messages(), key=lambda r: (r.arrives, r.endpoint)):
        day = (r.arrives.date() - ONBOARDING).days + 1
        days[day].records.append(r)
    return [days[d] for d in sorted(days)]


def sessions() -> list[dict[str, Any]]:
    return [r.body for d in journey() for r in d.records if r.endpoint == "sessions"]


def rescheduled_ids() -> set[str]:
    return {s["session_id"] for s in sessions() if s["tutor_initiated_reschedule"]}


def no_show_ids() -> set[str]:
    return {s["session_id"] for s in sessions() if s["no_show"]}


def day_of(ts: datetime) -> int:
    return (ts.astimezone(UTC).date() - ONBOARDING).days + 1
