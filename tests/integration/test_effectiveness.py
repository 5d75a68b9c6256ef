"""PRD §4.4 effectiveness on hand-built cases: acceptance, completion, impact within the rules' window, time
to action; figures worked out independently in the test."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.interventions import effectiveness as eff
from domain.interventions.models import OutboxMessage
from domain.scoring.models import ChurnPrediction
from rules.interventions import active_intervention_rules
from tests.auth import as_role
from tests.factories import intervention_row as _iv
from tests.factories import seed_people

H, D = timedelta(hours=1), timedelta(days=1)

# --- effectiveness ---------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def _seed_effectiveness(engine: Engine) -> None:
    """Eight cases in the 90-day period, one older, one step. Expected figures are worked out by hand in the test."""
    t1, t2, t3 = seed_people(engine, tutors=3, students=0)
    at = lambda days: NOW - days * D  # noqa: E731
    with session_scope(engine) as db:
        db.add_all([
            # H1 Critical: acted after 10 h and 30 h, one still untouched (too recent for impact).
            _iv("c1", t1, "H1_coaching_session", recommended=at(40), risk_level="Critical", churn_score=80,
                first_action_at=at(40) + 10 * H, status="completed", outcome="improved"),
            _iv("c2", t2, "H1_coaching_session", recommended=at(35), risk_level="Critical", churn_score=78,
                first_action_at=at(35) + 30 * H, status="cancelled"),
            _iv("c3", t3, "H1_coaching_session", recommended=at(10), risk_level="Critical", churn_score=90,
                status="pending"),
            # H4 High: c4 predates stored scores (no churn_score): its baseline is that day's prediction.
            _iv("c4", t3, "H4_retention_interview", recommended=at(50), risk_level="High",
                first_action_at=at(50) + 2 * H, status="completed", outcome="improved"),
            _iv("c10", t1, "H4_retention_interview", recommended=at(3), risk_level="High", churn_score=60,
                status="needs_approval"),
            # A1 High: opened (in-app), never sent (failed email), sent but unopened.
            _iv("c5", t2, "A1_coaching_tips", kind="automated", step="message", recommended=at(45),
                risk_level="High", churn_score=65, opened_at=at(44), status="completed"),
            _iv("c6", t3, "A1_coaching_tips", kind="automated", step="message", recommended=at(20),
                risk_level="High", churn_score=55, status="cancelled"),
            _iv("c7", t1, "A1_coaching_tips", kind="automated", step="message", recommended=at(5),
                risk_level="High", churn_score=58, status="in_progress"),
            # Not counted: a step of c1, and a case before the period.
            _iv("c1-checkin", t1, "H1_coaching_session", recommended=at(39), risk_level="Critical", step="checkin",
                parent_id="c1", first_action_at=at(39) + 100 * H, status="completed"),
            _iv("c9", t1, "H1_coaching_session", recommended=at(100), risk_level="Critical", churn_score=90,
                first_action_at=at(100) + H, status="completed"),
        ])
        db.flush()
        mail = dict(subject="s", body="b", created_at=at(45))
        db.add_all([
            OutboxMessage(message_id="c5:in_app", intervention_id="c5", tutor_id=t2, channel="in_app", **mail),
            OutboxMessage(message_id="c6:email", intervention_id="c6", tutor_id=t3, channel="email",
                          status="failed", **mail),
            OutboxMessage(message_id="c7:email", intervention_id="c7", tutor_id=t1, channel="email", status="sent", **mail),
            # A staff notice on an automated case is not the tutor's message.
            OutboxMessage(message_id="c6:staff", intervention_id="c6", tutor_id=t3, channel="in_app",
                          recipient_role="ops_manager", **mail),
        ])
        scores = {
            t1: [(40, 80), (30, 76), (10, 70), (9, 50)],  # c1 window ends 10 days ago: 70, 10 points better
            t2: [(35, 78), (16, 58), (5, 76)],  # c5 (45..15 days ago) ends at 58: -7; c2 (35..5) ends at 76: -2
            t3: [(51, 60), (30, 54), (19, 30)],  # c4: baseline 60 (day before), ends at 54 (20 days ago): -6
        }
        db.add_all([ChurnPrediction(tutor_id=t, prediction_date=(NOW - days * D).date(), as_of=NOW - days * D,
                                    churn_score=score, risk_level="High", model_version="test")
                    for t, rows in scores.items() for days, score in rows])


def _figures(row: Any) -> tuple:
    return (row.recommended, row.acceptance_base, row.accepted, row.closed, row.completed, row.impact_measured,
            row.improved, row.time_to_action_median_hours, row.time_to_action_mean_hours)


def test_effectiveness_figures(engine: Engine, settings: Settings) -> None:
    _seed_effectiveness(engine)
    window = eff.settings_from_rules(active_intervention_rules(settings.rules_dir))
    assert window == {"impact_window_days": 30, "improvement_points": 5.0}
    with session_scope(engine) as db:
        report = eff.effectiveness(db, now=NOW, days=90, **window)
    # Acceptance: human c1, c2, c4 acted of c1 c2 c3 c4 c10; automated c5 opened of sent c5, c7 -> 4 / 7.
    # Completion: c1 c4 c5 completed of closed c1 c2 c4 c5 c6 -> 3 / 5. Impact: c1 c4 c5 of c1 c2 c4 c5 -> 3 / 4.
    # Time to action: 10 h, 30 h, 2 h -> median 10, mean 14.
    assert _figures(report.overall) == (8, 7, 4, 5, 3, 4, 3, 10.0, 14.0)
    assert (report.overall.acceptance_rate, report.overall.completion_rate, report.overall.impact_rate) == (
        round(4 / 7, 4), 0.6, 0.75)
    rows = {(r.intervention_type, r.risk_level): r for r in report.rows}
    assert list(rows) == [("A1_coaching_tips", "High"), ("H1_coaching_session", "Critical"),
                          ("H4_retention_interview", "High")]
    h1 = rows[("H1_coaching_session", "Critical")]
    assert _figures(h1) == (3, 3, 2, 2, 1, 2, 1, 20.0, 20.0)
    assert h1.on_target == {"acceptance_rate": False, "completion_rate": False, "impact_rate": False,
                            "time_to_action": True}  # 20 h median < 24 h for critical
    assert _figures(rows[("H4_retention_interview", "High")]) == (2, 2, 1, 1, 1, 1, 1, 2.0, 2.0)
    a1 = rows[("A1_coaching_tips", "High")]
    assert _figures(a1) == (3, 2, 1, 2, 1, 1, 1, None, None) and a1.kinds == ["automated"]
    assert a1.on_target["time_to_action"] is None and a1.on_target["impact_rate"] is True
    assert [(r.risk_level, r.recommended) for r in report.by_risk] == [("High", 5), ("Critical", 3)]

    with session_scope(engine) as db:  # a stricter threshold: c4 (-6) and c5 (-7) no longer count, c1 (-10) does
        strict = eff.effectiveness(db, now=NOW, days=90, impact_window_days=30, improvement_points=8)
        short = eff.effectiveness(db, now=NOW, days=30, impact_window_days=30, improvement_points=5)
    assert (strict.overall.impact_measured, strict.overall.improved) == (4, 1)
    assert (short.overall.recommended, short.overall.impact_measured) == (4, 0)  # c3 c10 c6 c7; none 30 days old


def test_effectiveness_route_reads_the_window_from_the_rules(engine: Engine, settings: Settings) -> None:
    _seed_effectiveness(engine)
    with TestClient(create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))) as client:
        client.headers.update(as_role(engine, "ops_manager"))
        body = client.get("/api/v1/interventions/effectiveness", params={"as_of": NOW.isoformat()}).json()
        assert client.get("/api/v1/interventions/effectiveness", params={"days": 0}).status_code == 422
    assert (body["days"], body["impact_window_days"], body["improvement_points"]) == (90, 30, 5.0)
    assert body["targets"] == {"acceptance_rate": 0.7, "completion_rate": 0.85, "impact_rate": 0.6,
                               "time_to_action_hours": 24.0, "time_to_action_risk_level": "Critical"}
    assert (body["overall"]["recommended"], body["overall"]["impact_rate"]) == (8, 0.75)
    assert len(body["rows"]) == 3 and [r["risk_level"] for r in body["by_risk"]] == ["High", "Critical"]


