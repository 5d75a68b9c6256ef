"""Metrics, pattern detectors and the rule-based churn score on small hand-built histories."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from domain.metrics.service import History, SessionFact, below_thresholds, window_metrics
from domain.scoring import service as scoring
from rules.scoring import load_scoring_rules

RULES = load_scoring_rules(Path(__file__).resolve().parents[2] / "rules" / "scoring.yaml").spec
AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # midnight UTC: window edges fall on day boundaries


def fact(n: int, *, days_ago: float, number: int = 5, rating: float | None = 4.5, no_show: bool = False,
         rescheduled: bool = False, late: int = 0, engagement: float | None = 0.8, objectives: bool | None = True) -> SessionFact:
    return SessionFact(session_id=f"s{n}", scheduled_start=AS_OF - timedelta(days=days_ago), session_number=number,
                       rating=None if no_show else rating, no_show=no_show, rescheduled=rescheduled,
                       late_start_minutes=late, engagement=None if no_show else engagement,
                       objectives_met=None if no_show else objectives)


def history(*sessions: SessionFact, logins_per_day: int = 1, days: int = 30) -> History:
    logins = [AS_OF - timedelta(days=d, hours=h) for d in range(days) for h in range(1, logins_per_day + 1)]
    return History(sessions=sorted(sessions, key=lambda s: s.scheduled_start), logins=sorted(logins), response_minutes=[])


def test_empty_window() -> None:
    m = window_metrics(history(logins_per_day=0), as_of=AS_OF, days=7, rules=RULES)
    assert (m.sessions_scheduled, m.avg_rating, m.first_session_success_rate, m.reschedule_rate, m.no_show_rate) == (0, None, None, None, None)
    assert m.engagement_score == 0
    assert below_thresholds(m, RULES) == ["engagement_score"]
    comps = scoring.components(m, window_metrics(history(), as_of=AS_OF, days=30, rules=RULES), tenure_days=400, rules=RULES)
    assert comps["availability_reduction"] == 100  # an established tutor with nothing scheduled
    comps_new = scoring.components(m, m, tenure_days=3, rules=RULES)
    assert comps_new["availability_reduction"] == 0 and comps_new["tenure_risk"] == 100


def test_all_no_shows() -> None:
    h = history(*(fact(i, days_ago=i, no_show=True) for i in range(1, 6)))
    m = window_metrics(h, as_of=AS_OF, days=30, rules=RULES)
    assert m.no_show_rate == 1 and m.no_show_count == 5 and m.sessions_completed == 0 and m.avg_rating is None
    flags = {f.name: f for f in scoring.detect_patterns(h, as_of=AS_OF, rules=RULES)}
    assert set(flags) == {"no_show_risk"}
    assert sorted(flags["no_show_risk"].evidence["session_ids"]) == ["s1", "s2", "s3", "s4", "s5"]
    assert scoring.components(m, m, tenure_days=400, rules=RULES)["no_show_risk"] == 100


def test_single_poor_first_session_flags_with_evidence() -> None:
    h = history(fact(1, days_ago=2, number=1, rating=2))
    m = window_metrics(h, as_of=AS_OF, days=30, rules=RULES)
    assert m.first_session_count == 1 and m.first_session_success_rate == 0
    (flag,) = scoring.detect_patterns(h, as_of=AS_OF, rules=RULES)
    assert flag.name == "poor_first_session" and flag.evidence == {"session_ids": ["s1"]} and flag.bump == 15
    assert flag.triggered_at == AS_OF - timedelta(days=2)


def test_late_first_session_flags_even_when_rated_well() -> None:
    h = history(fact(1, days_ago=1, number=1, rating=5, late=11), fact(2, days_ago=1, number=1, rating=5, late=10))
    (flag,) = scoring.detect_patterns(h, as_of=AS_OF, rules=RULES)
    assert flag.evidence["session_ids"] == ["s1"]


@pytest.mark.parametrize(("count", "flagged"), [(3, False), (4, True)])
def test_high_reschedule_needs_more_than_three_in_seven_days(count: int, flagged: bool) -> None:
    sessions = [fact(i, days_ago=1 + i, rescheduled=True) for i in range(count)]
    sessions.append(fact(99, days_ago=9, rescheduled=True))  # outside the 7-day window
    names = {f.name for f in scoring.detect_patterns(history(*sessions), as_of=AS_OF, rules=RULES)}
    assert ("high_reschedule" in names) is flagged


def test_window_boundaries_at_midnight_utc() -> None:
    edge = fact(1, days_ago=7)  # exactly as_of - 7 days: belongs to the previous window
    inside = fact(2, days_ago=0)  # exactly as_of: included
    m = window_metrics(history(edge, inside), as_of=AS_OF, days=7, rules=RULES)
    assert m.sessions_scheduled == 1


def test_time_zones_are_normalised() -> None:
    from zoneinfo import ZoneInfo

    local = AS_OF.astimezone(ZoneInfo("America/Los_Angeles"))  # the same instant written in another zone
    s = SessionFact("s1", local - timedelta(hours=1), 2, 4.0, False, False, 0, 0.7, True)
    assert window_metrics(history(s), as_of=AS_OF, days=7, rules=RULES).sessions_scheduled == 1


def test_rating_average_uses_the_last_30_rated_sessions() -> None:
    old = [fact(i, days_ago=20 + i * 0.1, rating=1) for i in range(10)]
    recent = [fact(100 + i, days_ago=1 + i * 0.1, rating=5) for i in range(30)]
    assert window_metrics(history(*old, *recent), as_of=AS_OF, days=30, rules=RULES).avg_rating == 5


def test_score_bounds_and_risk_levels() -> None:
    assert [RULES.risk_level(s) for s in (0, 25, 25.1, 50, 51, 75, 75.5, 76, 100)] == [
        "Low", "Low", "Medium", "Medium", "High", "High", "Critical", "Critical", "Critical"]
    worst = {name: 100.0 for name in RULES.weights}
    flags = [scoring.Flag("x", AS_OF, 50, "x happened")]
    s = scoring.churn_score(worst, flags, RULES)
    assert s.churn_score == 100 and s.risk_level == "Critical"
    factors = s.contributing_factors(RULES)
    assert factors["engagement_decline"]["contribution"] == 25 and factors["pattern_x"]["contribution"] == 50


def test_healthy_tutor_scores_low_and_tier_follows_the_rules() -> None:
    sessions = [fact(i, days_ago=i * 0.5, rating=4.9, engagement=0.95) for i in range(1, 58)]
    h = history(*sessions)
    short, long = (window_metrics(h, as_of=AS_OF, days=d, rules=RULES) for d in (7, 30))
    comps = scoring.components(short, long, tenure_days=scoring.tenure_days(date(2024, 1, 1), AS_OF), rules=RULES)
    s = scoring.churn_score(comps, scoring.detect_patterns(h, as_of=AS_OF, rules=RULES), RULES)
    assert s.risk_level == "Low" and s.churn_score < 10
    assert scoring.tier(s, long, RULES) == "Exemplary"


def test_weights_come_from_the_rules_file() -> None:
    comps = {name: 0.0 for name in RULES.weights} | {"tenure_risk": 100.0}
    changed = RULES.model_copy(update={"weights": {**RULES.weights, "tenure_risk": 0.3, "engagement_decline": 0.05}})
    assert scoring.churn_score(comps, [], RULES).churn_score == 10
    assert scoring.churn_score(comps, [], changed).churn_score == 30
