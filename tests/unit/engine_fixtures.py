"""Shared fixtures for the evaluation-engine tests: a small world built by the synthetic engine, and hand-built
histories for exact threshold edges.

The world uses a stressed copy of the default scenario: at the default rates an 8-tutor, 3-week world has
almost no no-shows, reschedules or trainings, so the detectors and secondary metrics would be tested on zeros.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db import get_engine
from core.migrate import upgrade
from domain.metrics.history import History, SessionFact
from domain.metrics.service import WindowMetrics
from rules.scoring import load_scoring_rules
from synth.backfill import backfill
from synth.scenario import DEFAULT_PATH

RULES_PATH = Path(__file__).resolve().parents[2] / "rules" / "scoring.yaml"
RULES = load_scoring_rules(RULES_PATH).spec

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)  # midnight UTC, so window edges fall on day boundaries

WORLD_END = datetime(2026, 11, 20, tzinfo=UTC)
WORLD_DAYS = 21
WORLD_SEED = 5  # at this seed every detector fires for some tutor and day, and stays quiet for others
WORLD_TUTORS = 8
WORLD_SESSIONS_PER_DAY = 40


@dataclass(frozen=True)
class World:
    engine: Engine
    tutor_ids: list[str]
    epoch: datetime
    end: datetime


def _stressed_scenario(folder: Path) -> Path:
    sc = yaml.safe_load(DEFAULT_PATH.read_text())
    for kind in sc["archetypes"].values():
        kind["no_show_p"]["median"] *= 6
        kind["reschedule_p"]["median"] *= 5
    sc["behaviour"]["trainings_per_month"] = 8
    sc["behaviour"]["availability_changes_per_week"] = 2
    path = folder / "stressed.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def build_world(folder: Path) -> World:
    url = f"sqlite:///{folder / 'world.db'}"
    upgrade(url)
    engine = get_engine(url)
    report = backfill(engine, days=WORLD_DAYS, seed=WORLD_SEED, n_tutors=WORLD_TUTORS,
                      sessions_per_day=WORLD_SESSIONS_PER_DAY, end=WORLD_END, progress=lambda _line: None,
                      scenario=_stressed_scenario(folder))
    assert report.sessions_created > 500, "the world is too thin to test anything"
    return World(engine=engine, tutor_ids=sorted(report.tutor_ids), epoch=report.epoch, end=report.end)


def sql_ts(ts: datetime) -> str:
    """A bound timestamp as SQLite holds it (naive UTC text with microseconds), so the raw-SQL references compare
    strings exactly as stored rather than trusting the product's column type."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    bound = {k: sql_ts(v) if isinstance(v, datetime) else v for k, v in params.items()}
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), bound)]


def scalar(engine: Engine, sql: str, **params: object) -> object:
    (row,) = rows(engine, sql, **params)
    return row[0]


# The session's rating as the product defines it: the student's feedback if submitted before `until`, else the
# feed's quick rating. Written out in SQL here so the references never go through the product's reader.
RATED_SESSIONS = """
    SELECT s.session_id, s.scheduled_start, s.session_number, s.no_show, s.tutor_initiated_reschedule,
           s.late_start_minutes, s.learning_objectives_met, s.technical_issues, s.subject, s.session_type,
           COALESCE(f.overall_rating, s.student_rating) AS rating
    FROM sessions s
    LEFT JOIN student_feedback f ON f.session_id = s.session_id AND f.submitted_at < :until
    WHERE s.tutor_id = :tutor AND s.scheduled_start >= :since AND s.scheduled_start < :until
"""


def fact(n: int | str, *, at: datetime | None = None, days_ago: float = 1, number: int = 5,
         rating: float | None = 4.5, no_show: bool = False, rescheduled: bool = False, late: int = 0,
         objectives: bool | None = True, subject: str = "Algebra", session_type: str = "1-on-1",
         technical: bool = False, not_again: bool = False) -> SessionFact:
    return SessionFact(
        session_id=n if isinstance(n, str) else f"s{n}",
        scheduled_start=at if at is not None else AS_OF - timedelta(days=days_ago), session_number=number,
        rating=None if no_show else rating, no_show=no_show, rescheduled=rescheduled,
        late_start_minutes=0 if no_show else late, engagement=None if no_show else 0.8,
        objectives_met=None if no_show else objectives, subject=subject, session_type=session_type,
        technical_issues=technical, not_again=not_again)


def history(*sessions: SessionFact, logins: list[datetime] | None = None, prep: float | None = None,
            responses: list[tuple[datetime, float]] | None = None,
            trainings: list[tuple[datetime, str]] | None = None,
            availability: list[tuple[datetime, float]] | None = None) -> History:
    """A history with the given sessions; ``prep`` minutes are attached to every login."""
    logins = sorted(logins or [])
    return History(
        sessions=sorted(sessions, key=lambda s: (s.scheduled_start, s.session_id)), logins=logins,
        responses=sorted(responses or []), login_prep=[(t, prep) for t in logins] if prep is not None else [],
        trainings=sorted(trainings or []), availability_changes=sorted(availability or []))


def daily_logins(days: int, *, per_day: int = 1, end: datetime = AS_OF) -> list[datetime]:
    return [end - timedelta(days=d, hours=h) for d in range(days) for h in range(1, per_day + 1)]


def wm(days: int = 30, **values: object) -> WindowMetrics:
    """Window metrics with nothing in them but ``values``."""
    base: dict[str, object] = dict(
        days=days, sessions_scheduled=0, sessions_completed=0, avg_rating=None, first_session_count=0,
        first_session_success_rate=None, reschedule_count=0, reschedule_rate=None, no_show_count=0,
        no_show_rate=None, logins=0, engagement_score=None, learning_objectives_met_pct=None,
        response_time_avg_minutes=None)
    return WindowMetrics(**(base | values))
