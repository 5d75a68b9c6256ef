"""The PRD's correlations, checked statistically on a 90-day run at full volume (no database: ~35 s).

Each test states the relationship the issue names and asserts it at p < 0.01, so a change that removes the
signal (or turns it into noise) fails here rather than in a model evaluation much later.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from rules.loader import RulesError
from synth.agents import NEVER, Agents, Delivered
from synth.scenario import DEFAULT_PATH, load_scenario, parse_scenario
from synth.simulate import simulate
from synth.world import build_world

EPOCH = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
DAYS = 90


@pytest.fixture(scope="module")
def run():
    agents = Agents(build_world(11, 250, EPOCH, load_scenario()))
    pairs: dict = {}
    sessions, logins, reschedules = [], defaultdict(lambda: np.zeros(DAYS)), []
    per_day = []
    for d in range(DAYS):
        b = simulate(agents, EPOCH + timedelta(days=d), EPOCH + timedelta(days=d + 1), sessions_per_day=3000,
                     pair_counts=pairs)
        per_day.append((len(b.sessions), len({s.tutor_id for s in b.sessions}), int(agents.view(d).alive.sum())))
        sessions += [(s.tutor_id, s.scheduled_start, s.no_show, s.session_number, s.student_rating,
                      s.tutor_initiated_reschedule) for s in b.sessions]
        for e in b.events:
            if e.event_type == "login":
                logins[e.tutor_id][d] += 1
            elif e.event_type == "reschedule_request":
                reschedules.append(e.metadata["tutor_initiated"])
    return agents, sessions, logins, reschedules, per_day


def _slot(agents: Agents, tutor_id: str) -> int:
    return int(tutor_id.split("_")[1]) - 1


def test_volume_and_active_tutors_hold_for_90_days(run):
    agents, _, _, _, per_day = run
    volume = np.array([p[0] for p in per_day])
    assert abs(volume.mean() - 3000) <= 300, volume.mean()
    assert all(200 <= p[1] <= 300 and 200 <= p[2] <= 300 for p in per_day), per_day
    assert agents.n_known > 250, "hires replace churned tutors"
    assert abs(per_day[-1][2] - 250) <= 25, "onboarding keeps the population stable"


def test_monday_morning_no_shows_exceed_other_slots(run):
    _, sessions, *_ = run
    mm = np.array([s[1].weekday() == 0 and 5 <= s[1].hour < 12 for s in sessions])
    ns = np.array([s[2] for s in sessions])
    table = [[ns[mm].sum(), (~ns[mm]).sum()], [ns[~mm].sum(), (~ns[~mm]).sum()]]
    _, p = stats.fisher_exact(table, alternative="greater")
    assert ns[mm].mean() > ns[~mm].mean() and p < 0.01, (ns[mm].mean(), ns[~mm].mean(), p)


def test_first_session_ratings_rise_with_tenure(run):
    agents, sessions, *_ = run
    tenure, rating = [], []
    for tid, start, no_show, number, r, _ in sessions:
        if number == 1 and not no_show:
            tenure.append((start.date() - agents.onboarding_date(_slot(agents, tid))).days)
            rating.append(r)
    rho, p = stats.spearmanr(tenure, rating)
    assert rho > 0 and p < 0.01, (rho, p)


def test_most_reschedules_are_tutor_initiated(run):
    share = np.mean(run[3])
    assert len(run[3]) > 1000 and abs(share - 0.982) <= 0.015, share


def test_weeks_with_over_3_reschedules_precede_churn_within_30_days(run):
    agents, sessions, *_ = run
    weekly = defaultdict(int)
    for tid, start, *_rest, by_tutor in sessions:
        if by_tutor:
            weekly[(tid, (start - EPOCH).days // 7)] += 1
    flagged, churned = [], []
    for week in range((DAYS - 30) // 7):
        end = 7 * (week + 1)
        for i in np.flatnonzero(agents.view(end - 1).alive):
            flagged.append(weekly[(agents.world.tutor_id(int(i)), week)] > 3)
            churned.append(end <= agents.churn_day[i] < end + 30)
    flagged, churned = np.array(flagged), np.array(churned)
    table = [[(flagged & churned).sum(), (flagged & ~churned).sum()], [(~flagged & churned).sum(), (~flagged & ~churned).sum()]]
    _, p = stats.fisher_exact(table, alternative="greater")
    assert churned[flagged].mean() > churned[~flagged].mean() and p < 0.01, (table, p)


def test_logins_fall_before_churn(run):
    agents, _, logins, *_ = run
    before, earlier = [], []
    for i, day in enumerate(agents.churn_day[: agents.n_known].tolist()):
        if 42 <= day < NEVER and agents.onboard_day[i] <= 0:
            series = logins[agents.world.tutor_id(i)]
            before.append(series[day - 14:day].mean())
            earlier.append(series[: day - 28].mean())
    assert len(before) >= 15
    _, p = stats.wilcoxon(before, earlier, alternative="less")
    assert p < 0.01, p


def test_churn_truth_uses_the_prd_definitions(run):
    agents = run[0]
    causes = {c.value for c in agents.causes.values()}
    assert "resignation" in causes and causes & {"engagement_decline", "reduced_activity", "inactivity"}
    rows = agents.truth_rows(1, EPOCH + timedelta(days=DAYS))
    assert sum(r["churned_at"] is not None for r in rows) == sum(
        agents.day_start(int(d)) <= EPOCH + timedelta(days=DAYS) for d in agents.churn_day if d < NEVER)


def test_a_strong_intervention_lowers_decline_and_churn():
    text = DEFAULT_PATH.read_text()
    strong = text.replace(
        "H1_coaching_session:      {ignore_probability: 0.15, hazard_multiplier: 0.60, engagement_boost: 0.08",
        "H1_coaching_session:      {ignore_probability: 0.0, hazard_multiplier: 0.2, engagement_boost: 0.25")
    assert strong != text
    scenario = parse_scenario(strong, "strong.yaml")
    base = Agents(build_world(5, 250, EPOCH, scenario))
    base.advance_to(10)
    declining = [i for i in range(250) if base.view(9).alive[i] and base.state[i] == 2]
    at = EPOCH + timedelta(days=9, hours=10)
    treated = Agents(build_world(5, 250, EPOCH, scenario),
                     [Delivered(f"iv-{i}", base.world.tutor_id(i), "H1_coaching_session", at) for i in declining])
    base.advance_to(60)
    treated.advance_to(60)
    e_base = [float(base.history[30][0][i]) for i in declining]
    e_treated = [float(treated.history[30][0][i]) for i in declining]
    assert len(declining) >= 20
    _, p = stats.wilcoxon(e_treated, e_base, alternative="greater")
    assert p < 0.01, p
    gone = [int(a.churn_day[i] < 60) for a in (base, treated) for i in declining]
    assert sum(gone[len(declining):]) < sum(gone[: len(declining)])
    assert any(t.reason == "intervention:H1_coaching_session" for t in treated.transitions)


def test_scenario_errors_name_the_file_line_and_field():
    text = DEFAULT_PATH.read_text()
    with pytest.raises(RulesError) as bad:
        parse_scenario(text.replace("reversion: 0.06", "reversion: -1"), "bad.yaml")
    assert "bad.yaml:" in str(bad.value) and "latent.reversion" in str(bad.value)
    with pytest.raises(RulesError) as typo:
        parse_scenario(text.replace("\n  noise_sd:", "\n  nosie_sd: 0.5\n  noise_sd:"), "typo.yaml")
    assert "latent.nosie_sd" in str(typo.value)
    with pytest.raises(RulesError, match="shares must sum to 1"):
        parse_scenario(text.replace("share: 0.30", "share: 0.40"), "shares.yaml")
    assert parse_scenario(text + "\n# a comment\n", "x.yaml").hash == load_scenario().hash
