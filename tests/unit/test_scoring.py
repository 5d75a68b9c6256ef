"""PRD §3.1 rule-based churn score: the seven components, weights and bumps, risk levels, explanations, and
results that follow the rules file without code changes."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlmodel import Session

from domain.evaluation.assess import assess
from domain.metrics.history import load_history
from domain.metrics.service import window_metrics
from domain.scoring import service as scoring
from domain.scoring.patterns import Flag
from rules.loader import RulesError
from rules.scoring import COMPONENTS, load_scoring_rules
from tests.unit.engine_fixtures import (
    AS_OF, RULES, RULES_PATH, WORLD_END, World, daily_logins, fact, history, rows, wm,
)

W = RULES.weights


def _assessments(w: World, as_of: datetime, rules=RULES) -> list:  # noqa: ANN001
    onboarding = {t: date.fromisoformat(d) for t, d in rows(w.engine, "SELECT tutor_id, onboarding_date FROM tutors")}
    with Session(w.engine) as db:
        return [assess(t, load_history(db, t, since=as_of - timedelta(days=rules.history_days), until=as_of),
                       onboarding=onboarding[t], as_of=as_of, rules=rules, bounds=None) for t in w.tutor_ids]


def _only(**values: float) -> dict[str, float]:
    return {name: 0.0 for name in COMPONENTS} | values


# ---- engine-built ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", [WORLD_END, WORLD_END - timedelta(days=3, hours=5)])
def test_world_scores_are_weighted_components_plus_bumps(world: World, as_of: datetime) -> None:
    for a in _assessments(world, as_of):
        s = a.score
        assert set(s.components) == set(COMPONENTS)
        assert all(0 <= v <= 100 for v in s.components.values()), (a.tutor_id, s.components)
        raw = sum(W[k] * v for k, v in s.components.items()) + sum(f.bump for f in s.flags)
        assert s.churn_score == round(min(100.0, raw), 1)
        assert s.risk_level == next(level for level, top in (("Low", 25), ("Medium", 50), ("High", 75),
                                                              ("Critical", 100)) if s.churn_score <= top)


def test_world_components_match_sql_rates_and_onboarding(world: World) -> None:
    """Three components re-derived from the raw tables: the tenure line, and the reschedule and no-show rates."""
    onboarding = dict(rows(world.engine, "SELECT tutor_id, onboarding_date FROM tutors"))
    for a in _assessments(world, WORLD_END):
        scheduled, resched, missed = rows(world.engine, """
            SELECT COUNT(*), SUM(tutor_initiated_reschedule), SUM(no_show) FROM sessions
            WHERE tutor_id = :t AND scheduled_start >= :since AND scheduled_start < :until""",
            t=a.tutor_id, since=WORLD_END - timedelta(days=30), until=WORLD_END)[0]
        tenure = (WORLD_END.date() - date.fromisoformat(onboarding[a.tutor_id])).days
        assert a.tenure_days == tenure
        assert a.score.components["tenure_risk"] == pytest.approx(
            100 if tenure <= 30 else max(0.0, (180 - tenure) / 150 * 100))
        assert a.score.components["reschedule_pattern"] == pytest.approx(min(100, resched / scheduled / 0.20 * 100))
        assert a.score.components["no_show_risk"] == pytest.approx(min(100, missed / scheduled / 0.08 * 100))


def test_world_explanations_are_ordered_by_contribution(world: World) -> None:
    explained = 0
    for a in _assessments(world, WORLD_END):
        factors = a.score.contributing_factors(RULES)
        lines = scoring.explain(factors, a.score.churn_score)
        total = round(sum(f["contribution"] for f in factors.values()), 1)
        if a.score.churn_score >= 100 and total > 100:  # a clamped score says so in a last line
            assert lines.pop() == f"together {total:g}, capped at {a.score.churn_score:g}"
        shares = [float(line.split(" contributed ")[1].split(" of ")[0]) for line in lines]
        assert shares == sorted(shares, reverse=True) and all(s > 0 for s in shares)
        assert len(lines) == sum(f["contribution"] > 0 for f in factors.values())
        assert all(line.endswith(f" of {a.score.churn_score:g}") for line in lines)
        explained += bool(lines)
    assert explained >= 4


# ---- components by hand ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("short", "long", "expected"), [
    (0.6, 0.8, 62.5),    # a 25% drop of a 40% full drop; 0.6 is not under the 0.60 threshold
    (0.45, 0.45, 25.0),  # no drop, but a quarter of the way from the threshold to zero
    (0.9, 0.8, 0.0),
    (0.3, 0.8, 100.0),   # clamped
    (None, None, 100.0), # nothing at all: engagement 0 is as low as it goes
])
def test_engagement_decline(short: float | None, long: float | None, expected: float) -> None:
    c = scoring.components(wm(7, engagement_score=short), wm(30, engagement_score=long), tenure_days=400, rules=RULES)
    assert c["engagement_decline"] == pytest.approx(expected)


@pytest.mark.parametrize(("short", "long", "expected"), [
    (4.2, 4.6, 50.0),    # a 0.4-star drop of a 0.8 full drop
    (4.9, 4.6, 0.0),
    (None, 3.0, 50.0),   # no recent ratings, but the month sits halfway between the 3.5 threshold and the 2.5 floor
    (3.0, 2.5, 100.0),
    (None, None, 0.0),
])
def test_performance_trend(short: float | None, long: float | None, expected: float) -> None:
    n = 0 if short is None else 3
    c = scoring.components(wm(7, avg_rating=short, ratings_count=n), wm(30, avg_rating=long), tenure_days=400, rules=RULES)
    assert c["performance_trend"] == pytest.approx(expected)


def test_performance_trend_ignores_a_short_window_with_too_few_ratings() -> None:
    # Two poor ratings in the week against a good month: noise, not a trend (the rules ask for 3).
    few = scoring.components(wm(7, avg_rating=3.0, ratings_count=2), wm(30, avg_rating=4.6), tenure_days=400, rules=RULES)
    enough = scoring.components(wm(7, avg_rating=3.0, ratings_count=3), wm(30, avg_rating=4.6), tenure_days=400, rules=RULES)
    assert few["performance_trend"] == 0 and enough["performance_trend"] == 100


@pytest.mark.parametrize(("rate", "resched", "no_show"), [(None, 0.0, 0.0), (0.02, 10.0, 25.0),
                                                          (0.04, 20.0, 50.0), (0.10, 50.0, 100.0), (0.5, 100.0, 100.0)])
def test_reschedule_and_no_show_components_read_the_long_window(rate: float | None, resched: float,
                                                                 no_show: float) -> None:
    c = scoring.components(wm(7, reschedule_rate=0.9, no_show_rate=0.9), wm(30, reschedule_rate=rate, no_show_rate=rate),
                           tenure_days=400, rules=RULES)
    assert (c["reschedule_pattern"], c["no_show_risk"]) == (pytest.approx(resched), pytest.approx(no_show))


@pytest.mark.parametrize(("count", "rate", "expected"), [
    (0, None, 0.0),
    (1, 0.0, (1 - 2 * 0.76 / 3) * 100),       # one bad first session is shrunk two-thirds toward the prior
    (1, 1.0, (1 - (1 + 2 * 0.76) / 3) * 100),
    (2, 0.5, (1 - (1 + 0.76) / 3) * 100),
    (3, 0.0, 100.0),                          # from three first sessions on, the rate speaks for itself
    (10, 0.7, 30.0),
])
def test_first_session_quality_shrinks_few_sessions_toward_the_prior(count: int, rate: float | None,
                                                                    expected: float) -> None:
    long = wm(30, first_session_count=count + 2, first_session_rated=count, first_session_success_rate=rate)
    c = scoring.components(wm(7), long, tenure_days=400, rules=RULES)
    assert c["first_session_quality"] == pytest.approx(expected)


def test_a_single_poor_first_session_end_to_end() -> None:
    h = history(fact(1, days_ago=2, number=1, rating=2), logins=daily_logins(30), prep=12)
    short, long = (window_metrics(h, as_of=AS_OF, days=d, rules=RULES) for d in (7, 30))
    c = scoring.components(short, long, tenure_days=20, rules=RULES)
    assert c["first_session_quality"] == pytest.approx((1 - 0.76 * 2 / 3) * 100)
    flags = scoring.detect_patterns(h, as_of=AS_OF, rules=RULES)
    assert [f.name for f in flags] == ["poor_first_session"]
    s = scoring.churn_score(c, flags, RULES)
    assert s.churn_score == round(sum(W[k] * v for k, v in c.items()) + 15, 1)


@pytest.mark.parametrize(("tenure", "expected"), [(0, 100), (30, 100), (31, 100 * 149 / 150), (105, 50), (180, 0),
                                                  (1000, 0)])
def test_tenure_risk(tenure: int, expected: float) -> None:
    c = scoring.components(wm(7), wm(30), tenure_days=tenure, rules=RULES)
    assert c["tenure_risk"] == pytest.approx(expected)


@pytest.mark.parametrize(("tenure", "short", "long", "expected"), [
    (400, 14, 60, 0.0),          # on pace: 2 a day
    (400, 7, 60, 50 / 0.6),      # half the pace, of a 60% full drop
    (400, 0, 60, 100.0),
    (400, 0, 0, 100.0),          # an established tutor with nothing at all
    (20, 0, 0, 0.0),             # a new one with nothing yet: no signal
    (10, 7, 20, 50 / 0.6),       # 20 sessions in 10 days of tenure is 2 a day, not 2/3 a day
    (3, 6, 6, 0.0),              # everything a 3-day-old tutor did is in both windows
])
def test_availability_reduction(tenure: int, short: int, long: int, expected: float) -> None:
    c = scoring.components(wm(7, sessions_scheduled=short), wm(30, sessions_scheduled=long), tenure_days=tenure,
                           rules=RULES)
    assert c["availability_reduction"] == pytest.approx(expected)


def test_empty_windows_score_inactivity_not_missing_data() -> None:
    empty = window_metrics(history(), as_of=AS_OF, days=7, rules=RULES)
    empty30 = window_metrics(history(), as_of=AS_OF, days=30, rules=RULES)
    c = scoring.components(empty, empty30, tenure_days=400, rules=RULES)
    assert c == _only(engagement_decline=100.0, availability_reduction=100.0)
    assert scoring.churn_score(c, [], RULES).churn_score == 30.0
    new = scoring.components(empty, empty30, tenure_days=3, rules=RULES)
    assert new == _only(engagement_decline=100.0, tenure_risk=100.0)


def test_all_no_shows_max_the_no_show_component() -> None:
    h = history(*(fact(i, days_ago=i * 3, no_show=True) for i in range(1, 6)), logins=daily_logins(30), prep=12)
    short, long = (window_metrics(h, as_of=AS_OF, days=d, rules=RULES) for d in (7, 30))
    c = scoring.components(short, long, tenure_days=400, rules=RULES)
    assert (c["no_show_risk"], c["performance_trend"], c["first_session_quality"]) == (100, 0, 0)
    flags = scoring.detect_patterns(h, as_of=AS_OF, rules=RULES)
    assert [f.name for f in flags] == ["no_show_risk"]


# ---- score, risk levels, explanations --------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "expected"), [
    (0, "Low"), (25, "Low"), (25.04, "Low"), (25.06, "Medium"), (26, "Medium"), (50, "Medium"), (51, "High"),
    (75, "High"), (76, "Critical"), (100, "Critical")])
def test_risk_level_boundaries(level: float, expected: str) -> None:
    s = scoring.churn_score({name: level for name in COMPONENTS}, [], RULES)  # weights sum to 1
    assert s.churn_score == round(level, 1) and s.risk_level == expected


def test_bumps_add_and_the_total_is_clamped() -> None:
    bump = Flag("poor_first_session", AS_OF, 15, "x")
    assert scoring.churn_score(_only(engagement_decline=100), [bump], RULES).churn_score == 40
    assert scoring.churn_score(_only(engagement_decline=100), [bump], RULES).risk_level == "Medium"
    s = scoring.churn_score({name: 100.0 for name in COMPONENTS}, [bump, Flag("no_show_risk", AS_OF, 25, "y")], RULES)
    assert (s.churn_score, s.risk_level) == (100, "Critical")


def test_explain_orders_lines_by_contribution() -> None:
    comps = _only(engagement_decline=80, reschedule_pattern=100, tenure_risk=50, availability_reduction=0)
    s = scoring.churn_score(comps, [Flag("no_show_risk", AS_OF, 25, "z")], RULES)
    assert s.churn_score == 65
    assert scoring.explain(s.contributing_factors(RULES), s.churn_score) == [
        "no-show risk flag contributed 25 of 65", "engagement decline contributed 20 of 65",
        "reschedule pattern contributed 15 of 65", "tenure risk contributed 5 of 65"]


def test_tenure_does_not_depend_on_the_zone_as_of_is_written_in() -> None:
    as_of = datetime(2026, 11, 20, tzinfo=UTC)
    days = {scoring.tenure_days(date(2026, 11, 1), as_of.astimezone(ZoneInfo(z)))
            for z in ("UTC", "America/Los_Angeles", "Asia/Kolkata")}
    assert days == {19}


# ---- the rules file drives the result ---------------------------------------------------------------------------


def _edited(tmp_path: Path, change) -> Path:  # noqa: ANN001
    data = yaml.safe_load(RULES_PATH.read_text())
    change(data)
    path = tmp_path / "scoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_changing_weights_and_risk_levels_changes_results(world: World, tmp_path: Path) -> None:
    def change(d: dict) -> None:
        d["weights"].update(tenure_risk=0.30, engagement_decline=0.05)
        d["risk_levels"]["Low"] = 30

    edited = load_scoring_rules(_edited(tmp_path, change)).spec
    assert scoring.churn_score(_only(tenure_risk=100), [], RULES).churn_score == 10
    assert scoring.churn_score(_only(tenure_risk=100), [], edited).churn_score == 30
    assert (RULES.risk_level(28), edited.risk_level(28)) == ("Medium", "Low")
    before = {a.tutor_id: a.score.churn_score for a in _assessments(world, WORLD_END)}
    after = {a.tutor_id: a.score.churn_score for a in _assessments(world, WORLD_END, edited)}
    assert before != after


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["weights"].update(tenure_risk=0.30), "weights must sum to 1"),
    (lambda d: d["patterns"]["high_reschedule"].update(min_rate=1.5), "field 'patterns.high_reschedule.min_rate'"),
    (lambda d: d["patterns"]["high_reschedule"].update(more_then=3), "field 'patterns.high_reschedule.more_then'"),
    (lambda d: d["thresholds"].pop("no_show_rate_max"), "field 'thresholds.no_show_rate_max'"),
    (lambda d: d["tiers"]["index"]["avg_rating"].update(good=3.5), "bad and good anchors must differ"),
])
def test_an_invalid_edit_is_refused_naming_the_field(tmp_path: Path, change, field: str) -> None:  # noqa: ANN001
    path = _edited(tmp_path, change)
    with pytest.raises(RulesError) as err:
        load_scoring_rules(path)
    assert field in str(err.value) and str(path) in str(err.value)


def test_explain_says_when_the_score_is_capped() -> None:
    factors = {"engagement_decline": {"score": 100, "weight": 0.25, "contribution": 25.0},
               "pattern_no_show_risk": {"score": 100.0, "weight": None, "contribution": 25},
               "pattern_high_reschedule": {"score": 100.0, "weight": None, "contribution": 20},
               "reschedule_pattern": {"score": 100, "weight": 0.15, "contribution": 15.0},
               "performance_trend": {"score": 100, "weight": 0.20, "contribution": 20.0}}
    lines = scoring.explain(factors, 100.0)
    assert lines[0] == "engagement decline contributed 25 of 100" and lines[1] == "no-show risk flag contributed 25 of 100"
    assert lines[-1] == "together 105, capped at 100"
    assert "capped" not in " ".join(scoring.explain({"tenure_risk": {"score": 50, "weight": 0.1, "contribution": 5.0}}, 5.0))
