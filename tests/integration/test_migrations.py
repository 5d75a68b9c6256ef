"""The one Alembic history upgrades, downgrades and re-upgrades on SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import inspect

from core.db import get_engine
from core.migrate import downgrade, upgrade

TABLES = {"tutors", "students", "sessions", "student_feedback", "tutor_events", "tutor_performance_metrics",
          "churn_predictions", "interventions", "users", "audit_log", "outbox", "synth_world",
          "synth_truth_tutors", "synth_truth_transitions"}


def test_history_round_trips(db_url: str) -> None:
    engine = get_engine(db_url)
    assert TABLES <= set(inspect(engine).get_table_names())
    downgrade(db_url, "base")
    engine.dispose()
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(db_url)
    engine.dispose()
    assert TABLES <= set(inspect(engine).get_table_names())
    cols = {c["name"] for c in inspect(engine).get_columns("sessions")}
    assert {"session_id", "tutor_id", "student_id", "session_number", "scheduled_start", "actual_start",
            "duration_minutes", "subject", "session_type", "tutor_initiated_reschedule", "no_show",
            "late_start_minutes", "engagement_score", "learning_objectives_met", "technical_issues",
            "created_at", "updated_at"} <= cols
