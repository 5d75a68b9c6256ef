"""PRD §2 metrics: window_metrics(load_history(...)) against references computed straight from the database with
SQL, on an engine-built world, plus hand-built edges (empty windows, all no-shows, midnight and time zones)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlmodel import Session

from core.db import get_engine, session_scope
from core.migrate import upgrade
from domain.evaluation.service import evaluate_tutor
from domain.metrics.history import load_histories, load_history
from domain.metrics.service import below_thresholds, percentile, window_metrics
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from rules.scoring import load_scoring_rules
from tests.factories import seed_people, session_payload
from tests.unit.engine_fixtures import (
    AS_OF, RATED_SESSIONS, RULES, RULES_PATH, WORLD_END, World, daily_logins, fact, history, rows,
    scalar,
)

LA, KOLKATA = ZoneInfo("America/Los_Angeles"), ZoneInfo("Asia/Kolkata")
# Midnight, an arbitrary mid-afternoon instant (some feedback on earlier sessions is not yet submitted), and the
# world's first instant (every window empty).
AS_OFS = [WORLD_END, WORLD_END - timedelta(days=4, hours=7, minutes=15), WORLD_END - timedelta(days=21)]


def _engagement_reference(logins: int, prep: float | None, response: float | None, days: int) -> tuple[dict, float]:
    e = RULES.engagement
    parts = {"login_frequency": min(1.0, logins / (days * e.expected_logins_per_day)),
             "session_prep": min(1.0, (prep or 0.0) / e.expected_prep_minutes),
             "communication": None if response is None else
             min(1.0, max(0.0, (e.response_bad_minutes - response) / (e.response_bad_minutes - e.response_good_minutes)))}
    weights = {"login_frequency": e.login_weight, "session_prep": e.prep_weight, "communication": e.communication_weight}
    used = {k: w for k, w in weights.items() if parts[k] is not None}
    return parts, sum(w * parts[k] for k, w in used.items()) / sum(used.values())


def reference(w: World, tutor: str, as_of: datetime, days: int) -> dict[str, object]:
    """Every metric from SQL over the raw tables; only the rules file's numbers are shared with the product."""
    p = {"tutor": tutor, "since": as_of - timedelta(days=days), "until": as_of}
    held = f"SELECT * FROM ({RATED_SESSIONS}) WHERE no_show = 0"
    rated = f"{held} AND rating IS NOT NULL"
    (scheduled, no_shows, resched, firsts) = rows(w.engine, f"""
        SELECT COUNT(*), COALESCE(SUM(no_show), 0), COALESCE(SUM(tutor_initiated_reschedule), 0),
               COALESCE(SUM(session_number = 1), 0) FROM ({RATED_SESSIONS})""", **p)[0]
    (completed, objectives, technical, late) = rows(w.engine, f"""
        SELECT COUNT(*), AVG(learning_objectives_met), AVG(technical_issues), AVG(late_start_minutes > 0)
        FROM ({held})""", **p)[0]
    avg_rating = scalar(w.engine, f"""SELECT AVG(rating) FROM ({rated}
        ORDER BY scheduled_start DESC, session_id DESC LIMIT {RULES.rating_last_n_sessions})""", **p)
    first_success = scalar(w.engine, f"SELECT AVG(rating >= :ok) FROM ({rated}) WHERE session_number = 1",
                           ok=RULES.first_session_success_rating, **p)
    by_subject = dict(rows(w.engine, f"SELECT subject, AVG(rating) FROM ({rated}) GROUP BY subject", **p))
    by_type = dict(rows(w.engine, f"SELECT session_type, AVG(rating) FROM ({rated}) GROUP BY session_type", **p))
    events = """FROM tutor_events WHERE tutor_id = :tutor AND event_timestamp >= :since
                AND event_timestamp < :until AND event_type = :kind"""
    logins = scalar(w.engine, f"SELECT COUNT(*) {events}", kind="login", **p)
    prep = scalar(w.engine, f"""SELECT AVG(json_extract(metadata, '$.session_prep_minutes')) {events}
        AND json_type(metadata, '$.session_prep_minutes') IN ('integer', 'real')""", kind="login", **p)
    responses = [r for (r,) in rows(w.engine, f"""SELECT json_extract(metadata, '$.response_minutes') {events}
        AND json_type(metadata, '$.response_minutes') IN ('integer', 'real')""", kind="message_response", **p)]
    required = RULES.secondary.required_training_modules
    modules = {m for (m,) in rows(w.engine, f"SELECT DISTINCT json_extract(metadata, '$.module') {events}",
                                  kind="training_completed", **p)}
    trainings = scalar(w.engine, f"SELECT COUNT(*) {events}", kind="training_completed", **p)
    (changes, hours) = rows(w.engine, f"""SELECT COUNT(*), COALESCE(SUM(json_extract(metadata,
        '$.hours_per_week_delta')), 0) {events}""", kind="availability_change", **p)[0]
    response_avg = float(np.mean(responses)) if responses else None
    parts, engagement = _engagement_reference(logins, prep, response_avg, days)
    return {
        "sessions_scheduled": scheduled, "sessions_completed": completed, "avg_rating": avg_rating,
        "first_session_count": firsts, "first_session_success_rate": first_success,
        "reschedule_count": resched, "reschedule_rate": resched / scheduled if scheduled else None,
        "no_show_count": no_shows, "no_show_rate": no_shows / scheduled if scheduled else None,
        "logins": logins, "engagement_score": engagement, "engagement_parts": parts,
        "learning_objectives_met_pct": objectives, "response_time_avg_minutes": response_avg,
        "response_time_p95_minutes": float(np.percentile(responses, RULES.secondary.response_time_percentile))
        if responses else None,
        "satisfaction_avg": scalar(w.engine, f"SELECT AVG(rating) FROM ({rated})", **p),
        "satisfaction_by_subject": by_subject, "satisfaction_by_session_type": by_type,
        "trainings_completed": trainings, "pd_completion_rate": len(modules & set(required)) / len(required),
        "availability_changes_per_week": changes * 7 / days, "availability_hours_delta": hours,
        "technical_issues_per_session": technical, "late_start_rate": late, "session_prep_minutes_avg": prep,
    }


def _same(actual: object, expected: object, tol: float = 1e-9) -> bool:
    if isinstance(expected, dict):  # the per-subject / per-type averages are stored rounded to 3 decimals
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            _same(actual[k], v, 5.01e-4) for k, v in expected.items())
    if expected is None or actual is None:
        return actual is expected
    return actual == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize("days", [7, 30])
@pytest.mark.parametrize("as_of", AS_OFS, ids=["midnight", "mid-day", "world-start"])
def test_every_metric_matches_an_sql_reference(world: World, as_of: datetime, days: int) -> None:
    with Session(world.engine) as db:
        for tutor in world.tutor_ids:
            h = load_history(db, tutor, since=as_of - timedelta(days=days), until=as_of)
            m = window_metrics(h, as_of=as_of, days=days, rules=RULES)
            ref = reference(world, tutor, as_of, days)
            wrong = {k: (getattr(m, k), v) for k, v in ref.items() if not _same(getattr(m, k), v)}
            assert not wrong, f"{tutor} as of {as_of:%m-%d %H:%M}, {days} days: (product, reference) {wrong}"


def test_the_world_exercises_every_metric(world: World) -> None:
    """Guards the comparison above against a world that would pass it on zeros and Nones."""
    refs = [reference(world, t, AS_OFS[0], 30) for t in world.tutor_ids]
    for key in ("no_show_count", "reschedule_count", "first_session_count", "trainings_completed",
                "availability_changes_per_week", "response_time_avg_minutes", "technical_issues_per_session",
                "late_start_rate"):
        assert sum(bool(r[key]) for r in refs) >= 2, key
    assert any(len(r["satisfaction_by_subject"]) > 1 for r in refs)
    assert any(0 < r["pd_completion_rate"] < 1 for r in refs)
    assert any(r["sessions_scheduled"] > RULES.rating_last_n_sessions for r in refs)  # the last-N cut bites
    assert {r["engagement_parts"]["communication"] is None for r in refs} == {False}
    empty = [reference(world, t, AS_OFS[2], 7) for t in world.tutor_ids]
    assert {r["sessions_scheduled"] for r in empty} == {0}


def test_feedback_submitted_after_as_of_is_not_used(world: World) -> None:
    late = rows(world.engine, """
        SELECT s.tutor_id, s.session_id, s.scheduled_start, s.student_rating, f.overall_rating, f.submitted_at
        FROM sessions s JOIN student_feedback f ON f.session_id = s.session_id
        WHERE s.student_rating IS NOT NULL AND f.overall_rating <> s.student_rating ORDER BY s.session_id LIMIT 5""")
    assert len(late) == 5
    # The mid-day reference comparison above also meets feedback that arrives after its as_of.
    assert scalar(world.engine, """SELECT COUNT(*) FROM sessions s JOIN student_feedback f ON f.session_id = s.session_id
        WHERE s.scheduled_start < :as_of AND f.submitted_at >= :as_of""", as_of=AS_OFS[1]) > 0
    with Session(world.engine) as db:
        for tutor, sid, _start, quick, overall, submitted in late:
            submitted = datetime.fromisoformat(submitted).replace(tzinfo=UTC)
            start = submitted - timedelta(days=1)
            at_submit = {s.session_id: s.rating for s in load_history(db, tutor, since=start, until=submitted).sessions}
            after = {s.session_id: s.rating
                     for s in load_history(db, tutor, since=start, until=submitted + timedelta(microseconds=1)).sessions}
            assert (at_submit[sid], after[sid]) == (quick, overall)


def test_the_rollup_reader_and_the_per_tutor_reader_agree(world: World) -> None:
    since, until = WORLD_END - timedelta(days=30), WORLD_END - timedelta(hours=5)
    with Session(world.engine) as db:
        together = load_histories(db, [*world.tutor_ids, "tutor_unknown"], since=since, until=until)
        for tutor in world.tutor_ids:
            assert together[tutor] == load_history(db, tutor, since=since, until=until)
    assert together["tutor_unknown"].sessions == [] and together["tutor_unknown"].logins == []


def test_time_zone_of_the_bounds_does_not_matter(world: World) -> None:
    tutor = world.tutor_ids[0]
    as_of = WORLD_END - timedelta(days=2, hours=3)
    with Session(world.engine) as db:
        utc = load_history(db, tutor, since=as_of - timedelta(days=30), until=as_of)
        for zone in (LA, KOLKATA):
            local = as_of.astimezone(zone)
            h = load_history(db, tutor, since=local - timedelta(days=30), until=local)
            assert h == utc
            assert window_metrics(h, as_of=local, days=7, rules=RULES) == window_metrics(
                utc, as_of=as_of, days=7, rules=RULES)
    assert len(utc.sessions) > 20


# ---- hand-built edges ------------------------------------------------------------------------------------------


def test_no_sessions_in_window() -> None:
    m = window_metrics(history(fact(1, days_ago=8)), as_of=AS_OF, days=7, rules=RULES)
    assert (m.sessions_scheduled, m.sessions_completed, m.no_show_count, m.reschedule_count) == (0, 0, 0, 0)
    for name in ("avg_rating", "first_session_success_rate", "reschedule_rate", "no_show_rate",
                 "learning_objectives_met_pct", "response_time_avg_minutes", "response_time_p95_minutes",
                 "satisfaction_avg", "technical_issues_per_session", "late_start_rate", "session_prep_minutes_avg"):
        assert getattr(m, name) is None, name
    assert m.engagement_score == 0 and m.engagement_parts == {"login_frequency": 0, "session_prep": 0,
                                                              "communication": None}
    assert (m.pd_completion_rate, m.availability_changes_per_week, m.satisfaction_by_subject) == (0, 0, {})
    assert below_thresholds(m, RULES) == ["engagement_score"]  # metrics without data are not "below"


def test_all_no_shows() -> None:
    h = history(*(fact(i, days_ago=i, no_show=True, number=1 if i == 1 else 4) for i in range(1, 6)))
    m = window_metrics(h, as_of=AS_OF, days=7, rules=RULES)
    assert (m.sessions_scheduled, m.sessions_completed, m.no_show_count, m.no_show_rate) == (5, 0, 5, 1)
    assert m.first_session_count == 1 and m.first_session_success_rate is None
    assert (m.avg_rating, m.learning_objectives_met_pct, m.late_start_rate, m.technical_issues_per_session) == (
        None, None, None, None)
    assert below_thresholds(m, RULES) == ["no_show_rate", "engagement_score"]


def test_single_first_session() -> None:
    m = window_metrics(history(fact(1, days_ago=2, number=1, rating=4)), as_of=AS_OF, days=7, rules=RULES)
    assert (m.first_session_count, m.first_session_success_rate) == (1, 1)  # 4 is the success rating itself
    m = window_metrics(history(fact(1, days_ago=2, number=1, rating=3.9)), as_of=AS_OF, days=7, rules=RULES)
    assert m.first_session_success_rate == 0


def test_rating_average_reads_the_last_30_rated_held_sessions() -> None:
    old = [fact(i, days_ago=20 + i * 0.1, rating=1) for i in range(10)]
    recent = [fact(100 + i, days_ago=1 + i * 0.1, rating=5) for i in range(29)]
    skipped = [fact(200, days_ago=0.5, no_show=True), fact(201, days_ago=0.4, rating=None)]
    m = window_metrics(history(*old, *recent, *skipped), as_of=AS_OF, days=30, rules=RULES)
    assert m.avg_rating == pytest.approx((29 * 5 + 1) / 30)  # one old rating makes up the 30
    assert m.satisfaction_avg == pytest.approx((29 * 5 + 10) / 39)


def test_secondary_metrics_by_hand() -> None:
    sessions = [fact(1, days_ago=1, rating=5, subject="Physics", late=3, technical=True),
                fact(2, days_ago=2, rating=3, subject="Physics", session_type="group"),
                fact(3, days_ago=3, rating=4, subject="Algebra", objectives=False),
                fact(4, days_ago=4, no_show=True, subject="Chemistry", technical=True)]  # a no-show is not "held"
    day = timedelta(days=1)
    h = history(*sessions, responses=[(AS_OF - day * k, m) for k, m in ((1, 10), (2, 20), (3, 30), (4, 1000))],
                trainings=[(AS_OF - day, "first_session_excellence"), (AS_OF - 2 * day, "first_session_excellence"),
                           (AS_OF - 3 * day, "subject_refresher")],
                availability=[(AS_OF - day, -4), (AS_OF - 9 * day, 2)])
    m = window_metrics(h, as_of=AS_OF, days=7, rules=RULES)
    assert m.satisfaction_by_subject == {"Algebra": 4, "Physics": 4}
    assert m.satisfaction_by_session_type == {"1-on-1": 4.5, "group": 3}
    assert (m.technical_issues_per_session, m.late_start_rate) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert m.learning_objectives_met_pct == pytest.approx(2 / 3)
    assert m.response_time_avg_minutes == 265 and m.response_time_p95_minutes == pytest.approx(854.5)
    assert (m.trainings_completed, m.pd_completion_rate) == (3, 0.25)  # a repeat and an optional module add nothing
    assert (m.availability_changes_per_week, m.availability_hours_delta) == (1, -4)


@pytest.mark.parametrize("values", [[7.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0], list(np.linspace(0, 97, 41))])
@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


@pytest.mark.parametrize(("logins", "prep", "responses", "expected"), [
    (7, 12, [30], 1.0),                      # every part at its "good" anchor
    (7, 6, [135], 0.4 + 0.15 + 0.15),        # halfway prep and a reply halfway between 30 and 240 minutes
    (14, 30, [240, 600], 0.4 + 0.3),         # parts are capped at 1; a slow reply floors at 0
    (7, 6, [], (0.4 + 0.15) / 0.7),          # no messages: the communication weight goes to the others
    (0, None, [], 0.0),                      # no logins means no prep either
])
def test_engagement_score_and_parts(logins: int, prep: float | None, responses: list[float], expected: float) -> None:
    h = history(logins=daily_logins(7)[:logins] if logins <= 7 else daily_logins(7, per_day=2), prep=prep,
                responses=[(AS_OF - timedelta(hours=i + 1), r) for i, r in enumerate(responses)])
    m = window_metrics(h, as_of=AS_OF, days=7, rules=RULES)
    assert m.engagement_score == pytest.approx(expected)
    assert set(m.engagement_parts) == {"login_frequency", "session_prep", "communication"}


def test_window_edges_at_midnight_utc() -> None:
    week = timedelta(days=7)
    h = history(fact("at_start", at=AS_OF - week), fact("at_end", at=AS_OF),
                fact("just_before_end", at=AS_OF - timedelta(microseconds=1)),
                fact("just_before_start", at=AS_OF - week - timedelta(microseconds=1)),
                logins=[AS_OF - week, AS_OF], responses=[(AS_OF - week, 60.0), (AS_OF, 999.0)])
    m = window_metrics(h, as_of=AS_OF, days=7, rules=RULES)
    assert (m.sessions_scheduled, m.logins, m.response_time_avg_minutes) == (2, 1, 60)
    # The real-time evaluation reads up to and including as_of: until = as_of + 1 µs shifts both edges.
    live = window_metrics(h, as_of=AS_OF + timedelta(microseconds=1), days=7, rules=RULES)
    assert (live.sessions_scheduled, live.logins) == (2, 1)
    assert live.response_time_avg_minutes == 999


def test_time_zones_give_the_same_windows() -> None:
    # 23:30 on 12 Nov in Los Angeles is 07:30 on 13 Nov UTC; 03:00 on 13 Nov in Kolkata is 21:30 on 12 Nov UTC.
    h = history(fact("la", at=datetime(2026, 11, 12, 23, 30, tzinfo=LA)),
                fact("ist", at=datetime(2026, 11, 13, 3, 0, tzinfo=KOLKATA), rating=3.0))
    nov13, nov14 = datetime(2026, 11, 13, tzinfo=UTC), datetime(2026, 11, 14, tzinfo=UTC)
    for end, rating in ((nov13, 3.0), (nov14, 4.5)):  # the UTC day ending at `end` holds just one of them
        for as_of in (end, end.astimezone(LA), end.astimezone(KOLKATA)):
            m = window_metrics(h, as_of=as_of, days=1, rules=RULES)
            assert (m.sessions_scheduled, m.avg_rating) == (1, rating), (end, as_of)


def test_local_time_sessions_are_stored_and_windowed_in_utc(tmp_path: Path) -> None:
    """Through the real ingestion path and SQLite: a session posted with a -08:00 offset at 23:30 belongs to the
    next UTC day, and the real-time evaluation counts a session starting exactly at its as_of."""
    url = f"sqlite:///{tmp_path / 'tz.db'}"
    upgrade(url)
    engine = get_engine(url)
    seed_people(engine, tutors=1, students=1)
    as_of = datetime(2026, 11, 14, 0, 0, tzinfo=UTC)
    # session_payload(n, at=...) starts n hours before `at`.
    payloads = [session_payload(1, at=datetime(2026, 11, 13, 0, 30, tzinfo=LA)),      # 23:30 LA = 13 Nov 07:30 UTC
                session_payload(2, at=datetime(2026, 11, 13, 6, 0, tzinfo=KOLKATA)),  # 04:00 IST = 12 Nov 22:30 UTC
                session_payload(3, at=as_of.astimezone(KOLKATA) + timedelta(hours=3))]  # exactly as_of
    with session_scope(engine) as db:
        ingest_sessions(db, [SessionIn.model_validate(p) for p in payloads], many=True)
    with Session(engine) as db:
        day = load_history(db, "tutor_1", since=as_of - timedelta(days=1), until=as_of)
        assert [s.session_id for s in day.sessions] == ["sess_tutor_1_1"]
        assert day.sessions[0].scheduled_start == datetime(2026, 11, 13, 7, 30, tzinfo=UTC)
    rules = load_scoring_rules(RULES_PATH)
    with session_scope(engine) as db:
        live = evaluate_tutor(db, "tutor_1", as_of=as_of, rules=rules, now=as_of)
    assert live.windows[7].sessions_scheduled == 3 and live.sessions_marked == 3
    engine.dispose()
