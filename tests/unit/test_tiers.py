"""Performance tiers: the index's anchors and weights, percentile cut-offs that hit the target shares, and red
flags that can only lower a tier."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest
from sqlmodel import Session

from core.db import session_scope
from domain.evaluation.assess import assess
from domain.evaluation.batch import evaluate_population
from domain.metrics.history import load_history
from domain.tiers.service import assign, cutoffs_from, performance_index
from rules.scoring import INDEX_METRICS, TIERS, load_scoring_rules
from tests.unit.engine_fixtures import RULES, RULES_PATH, WORLD_END, World, rows, wm

T = RULES.tiers
GOOD = {name: term.good for name, term in T.index.items()}
BAD = {name: term.bad for name, term in T.index.items()}
HELD = T.min_sessions


def _m(**values: float | None) -> object:
    return wm(T.window_days, sessions_completed=HELD, sessions_scheduled=HELD, **(GOOD | values))


def _tier(index: float | None, *, risk: str = "Low", flags: tuple[str, ...] = (), bounds: dict | None = None,
          **metrics: float | None) -> object:
    bounds = {"Exemplary": 0.9, "Strong": 0.7, "Developing": 0.5, "Needs Attention": 0.3, "At Risk": 0.0} \
        if bounds is None else bounds
    return assign(index, bounds=bounds, risk_level=risk, flag_names=list(flags), metrics=_m(**metrics), rules=RULES)


# ---- the index --------------------------------------------------------------------------------------------------


def test_index_anchors() -> None:
    assert performance_index(_m(), RULES) == 1
    assert performance_index(_m(**BAD), RULES) == 0
    middle = {k: (GOOD[k] + BAD[k]) / 2 for k in INDEX_METRICS}
    assert performance_index(_m(**middle), RULES) == pytest.approx(0.5)
    # Past an anchor counts as the anchor: a 50% reschedule rate is no worse than 10%.
    assert performance_index(_m(**BAD | {"reschedule_rate": 0.5, "avg_rating": 1.0}), RULES) == 0


@pytest.mark.parametrize("name", INDEX_METRICS)
def test_each_metric_carries_its_weight(name: str) -> None:
    assert performance_index(_m(**BAD | {name: GOOD[name]}), RULES) == pytest.approx(T.index[name].weight)


def test_a_metric_without_data_leaves_the_others_to_carry_the_index() -> None:
    m = _m(**BAD | {"first_session_success_rate": None, "avg_rating": 5.0})
    assert performance_index(m, RULES) == pytest.approx(0.30 / 0.85, abs=1e-6)


@pytest.mark.parametrize(("held", "ranked"), [(0, False), (HELD - 1, False), (HELD, True)])
def test_too_few_held_sessions_is_not_ranked(held: int, ranked: bool) -> None:
    m = wm(T.window_days, sessions_completed=held, sessions_scheduled=held + 3, **GOOD)
    assert (performance_index(m, RULES) is not None) is ranked


# ---- cut-offs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("draw", "slack"), [("distinct", 0), ("uniform", 1), ("beta", 1)])
def test_cutoffs_split_1000_tutors_by_the_target_shares(draw: str, slack: int) -> None:
    rng = np.random.default_rng(42)
    if draw == "distinct":
        indexes = (rng.permutation(1000) / 1000).tolist()
    else:  # rounded like performance_index, so a few tutors tie; a tie on a cut-off may move one tutor
        indexes = (rng.random(1000) if draw == "uniform" else rng.beta(5, 2, 1000)).round(6).tolist()
    bounds = cutoffs_from(indexes, RULES)
    assert list(bounds) == list(TIERS)
    assert [bounds[t] for t in TIERS] == sorted(bounds.values(), reverse=True)
    counts = Counter(_tier(i, bounds=bounds).tier for i in indexes)
    for tier, share in T.shares.items():
        assert abs(counts[tier] - share * 1000) <= slack, (tier, counts)


def test_cutoffs_without_a_population() -> None:
    assert cutoffs_from([], RULES) == dict.fromkeys(TIERS, 0.0)


# ---- red flags ----------------------------------------------------------------------------------------------------


def test_bands_without_red_flags() -> None:
    assert [_tier(i).tier for i in (0.95, 0.9, 0.8, 0.6, 0.4, 0.1)] == [
        "Exemplary", "Exemplary", "Strong", "Developing", "Needs Attention", "At Risk"]


@pytest.mark.parametrize(("risk", "expected"), [("Low", "Exemplary"), ("Medium", "Exemplary"),
                                                ("High", "Needs Attention"), ("Critical", "At Risk")])
def test_churn_risk_caps(risk: str, expected: str) -> None:
    r = _tier(0.95, risk=risk)
    assert r.tier == expected
    assert (f"churn risk {risk}" in r.reasons) is (expected != "Exemplary")


def test_metrics_under_threshold_cap_at_needs_attention_from_three() -> None:
    two = {"avg_rating": 3.4, "no_show_rate": 0.06}
    three = two | {"learning_objectives_met_pct": 0.7}
    assert _tier(0.8, **two).tier == "Strong"
    r = _tier(0.8, **three)
    assert r.tier == "Needs Attention"
    assert "3 metrics under threshold: avg_rating, no_show_rate, learning_objectives_met_pct" in r.reasons


def test_flags_cap_at_developing_and_exemplary_needs_everything_green() -> None:
    assert _tier(0.95, flags=("high_reschedule",)).tier == "Developing"
    assert _tier(0.8, flags=("no_show_risk",)).tier == "Developing"
    assert _tier(0.95, reschedule_rate=0.16).tier == "Strong"  # one metric over its threshold
    assert _tier(0.95, reschedule_rate=0.15).tier == "Exemplary"  # at the threshold is still green


def test_caps_only_ever_lower_a_tier() -> None:
    assert _tier(0.1, flags=("high_reschedule",), risk="High").tier == "At Risk"
    assert _tier(0.4, risk="High").tier == "Needs Attention"


def test_unranked_tutors_are_developing_unless_flagged_worse() -> None:
    assert _tier(None).tier == "Developing"
    assert _tier(0.95, bounds={}).tier == "Developing"  # no review has produced cut-offs yet
    assert _tier(None, risk="Critical").tier == "At Risk"
    unranked = assign(None, bounds=None, risk_level="Low", flag_names=[], rules=RULES,
                      metrics=wm(T.window_days, sessions_completed=HELD - 1, **GOOD))
    assert unranked.tier == "Developing" and unranked.index is None


# ---- engine-built -------------------------------------------------------------------------------------------------


def test_the_monthly_review_tiers_the_world_by_these_rules(world: World) -> None:
    onboarding = {t: date.fromisoformat(d) for t, d in rows(world.engine, "SELECT tutor_id, onboarding_date FROM tutors")}
    with Session(world.engine) as db:
        assessed = [assess(t, load_history(db, t, since=WORLD_END - timedelta(days=90), until=WORLD_END),
                           onboarding=onboarding[t], as_of=WORLD_END, rules=RULES, bounds=None) for t in world.tutor_ids]
    ranked = [a.index for a in assessed if a.index is not None]
    assert len(ranked) >= 6
    bounds = cutoffs_from(ranked, RULES)
    tiers = {a.tutor_id: assign(a.index, bounds=bounds, risk_level=a.score.risk_level, rules=RULES,
                                flag_names=[f.name for f in a.score.flags], metrics=a.windows[T.window_days]).tier
             for a in assessed}
    for a in assessed:
        if a.score.risk_level == "Critical":
            assert tiers[a.tutor_id] == "At Risk"
        if a.score.flags:
            assert TIERS.index(tiers[a.tutor_id]) >= TIERS.index("Developing")
    with session_scope(world.engine) as db:
        result = evaluate_population(db, as_of=WORLD_END, rules=load_scoring_rules(RULES_PATH), review=True,
                                     now=WORLD_END)
    assert result.review == "monthly_review" and result.active == len(world.tutor_ids)
    assert result.tier_counts == {t: sum(v == t for v in tiers.values()) for t in TIERS}
    stored = dict(rows(world.engine, "SELECT tutor_id, tier FROM tier_history WHERE source = 'monthly_review'"))
    assert stored == tiers
