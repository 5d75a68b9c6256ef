"""Rules files: the shipped ones load and pass their golden tests; broken ones fail naming file, line, rule, field."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules.interventions import load_intervention_rules
from rules.loader import RulesError
from rules.scoring import load_scoring_rules

RULES = Path(__file__).resolve().parents[2] / "rules"


def _write(tmp_path: Path, text: str, name: str = "interventions.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _mutated(tmp_path: Path, old: str, new: str, name: str = "interventions.yaml") -> Path:
    text = (RULES / name).read_text()
    assert old in text, old
    return _write(tmp_path, text.replace(old, new, 1), name)


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_shipped_rules_load_with_version_and_hash() -> None:
    rules = load_intervention_rules(RULES / "interventions.yaml")
    assert rules.version_label == "tutor_interventions@v2" and len(rules.hash) == 64
    scoring = load_scoring_rules(RULES / "scoring.yaml")
    assert scoring.version_label == "churn_scoring@v4"
    assert sum(scoring.spec.weights.values()) == pytest.approx(1)


# PRD §4.2: each risk level's row, with the §4.1 trigger conditions met -> the interventions it lists.
PRD_MAP = [
    ({"risk_level": "Low", "churn_score": 10, "tier": "Exemplary", "days_in_tier": 60, "first_sessions_recent": 1},
     {"A3_first_session_checkin", "H5_recognition"}),
    ({"risk_level": "Medium", "churn_score": 40, "tier": "Developing", "tenure_days": 20, "metrics_below_threshold": 1,
      "weakest_subject_rating_30d": 3.1, "first_sessions_recent": 1},
     {"A1_coaching_tips", "A2_training_module", "A3_first_session_checkin", "H2_peer_mentoring"}),
    ({"risk_level": "High", "churn_score": 66, "metrics_below_threshold": 1, "weakest_subject_rating_30d": 3.1,
      "first_sessions_recent": 1, "flag_high_reschedule": True, "days_high_or_critical": 7, "sessions_7d_vs_30d": 0.5},
     {"A1_coaching_tips", "A2_training_module", "A3_first_session_checkin", "A4_reschedule_alert",
      "H1_coaching_session", "H4_retention_interview"}),
    ({"risk_level": "Critical", "churn_score": 85, "metrics_below_threshold": 3, "weakest_subject_rating_30d": 3.0,
      "first_sessions_recent": 1, "flag_high_reschedule": True, "days_high_or_critical": 9, "login_decline_week": 0.5},
     {"A1_coaching_tips", "A2_training_module", "A3_first_session_checkin", "A4_reschedule_alert",
      "H1_coaching_session", "H3_pip", "H4_retention_interview"}),
]


@pytest.mark.parametrize(("facts", "expected"), PRD_MAP, ids=[f["risk_level"] for f, _ in PRD_MAP])
def test_every_prd_risk_level_maps_to_its_interventions(facts: dict, expected: set) -> None:
    _, actions = load_intervention_rules(RULES / "interventions.yaml").evaluate(facts)
    assert set(actions) == expected


def test_prd_durations_caps_and_owners_are_in_the_rules() -> None:
    spec = load_intervention_rules(RULES / "interventions.yaml").spec.interventions
    assert (spec["A1_coaching_tips"].cap.max, spec["A1_coaching_tips"].cap.days) == (1, 7)
    assert spec["A2_training_module"].follow_up.after_days == 7
    assert spec["A3_first_session_checkin"].send_delay_hours == 2 and spec["A3_first_session_checkin"].per == "first_session"
    assert spec["A4_reschedule_alert"].follow_up.after_days == 14 and spec["A4_reschedule_alert"].follow_up.escalation
    assert (spec["H1_coaching_session"].sla_hours, spec["H1_coaching_session"].owner_role) == (48, "ops_manager")
    assert spec["H2_peer_mentoring"].duration_days == 28
    pip = spec["H3_pip"]
    assert (pip.duration_days, pip.max_duration_days, pip.checkin_every_days, pip.requires_approval) == (30, 60, 7, True)


def test_follow_up_conditions_run_on_the_engine() -> None:
    rules = load_intervention_rules(RULES / "interventions.yaml")
    assert rules.follow_up_holds("A4_reschedule_alert", {"flag_high_reschedule": True})
    assert not rules.follow_up_holds("A4_reschedule_alert", {"flag_high_reschedule": False})
    assert not rules.follow_up_holds("A4_reschedule_alert", {})  # no facts: the pattern is not shown to continue


def test_comments_and_layout_do_not_change_the_hash(tmp_path: Path) -> None:
    text = (RULES / "interventions.yaml").read_text()
    reformatted = _write(tmp_path, "# an extra comment\n" + yaml.safe_dump(yaml.safe_load(text), sort_keys=False))
    assert load_intervention_rules(reformatted).hash == load_intervention_rules(RULES / "interventions.yaml").hash


def test_unknown_field_names_file_line_rule_and_field(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "{field: risk_level, op: eq, value: Critical}", "{field: risk_lvl, op: eq, value: Critical}")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    msg = str(err.value)
    assert f"{path}:{_line_of(path, 'risk_lvl')}" in msg
    assert "rule 'critical_pip'" in msg and "when.0.field" in msg and "risk_lvl" in msg


def test_unknown_action_and_bad_types_are_reported_together(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "then: [H1_coaching_session]", "then: [H1_coaching_session, H9_unknown]")
    text = path.read_text().replace("{field: tenure_days, op: lt, value: 60}", "{field: tenure_days, op: lt, value: sixty}")
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert len(err.value.problems) == 2
    assert any("H9_unknown" in p and "rule 'sustained_high_risk_coaching'" in p for p in err.value.problems)
    assert any("'sixty' is not a number" in p and "rule 'new_tutor_mentoring'" in p for p in err.value.problems)


def test_schema_errors_point_at_the_line(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "    sla_hours: 48                     # PRD: within 48 hours",
                    "    sla_hours: -5                     # PRD: within 48 hours")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert f"{path}:{_line_of(path, 'sla_hours: -5')}" in str(err.value)
    assert "interventions.H1_coaching_session.sla_hours" in str(err.value)


def test_failing_golden_test_rejects_the_file(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "then: [H3_pip]", "then: [H4_retention_interview]")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert "golden test failed" in str(err.value) and "rule 'critical_pip'" in str(err.value)


def test_a_follow_up_condition_on_an_unknown_input_is_rejected(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "        - {field: flag_high_reschedule, op: eq, value: true}",
                    "        - {field: reschedules_14d, op: gt, value: 3}")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert "interventions.A4_reschedule_alert.follow_up.when.0.field" in str(err.value) and "reschedules_14d" in str(err.value)


def test_a_reminder_after_the_sla_is_rejected(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "    reminder_before_hours: 12\n    escalate_to_role: admin",
                    "    reminder_before_hours: 50\n    escalate_to_role: admin")
    with pytest.raises(RulesError, match="reminder_before_hours must be shorter than sla_hours"):
        load_intervention_rules(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ruleset: x\nrules: [\n  - id: a\n")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert str(path) in str(err.value) and "not valid YAML" in str(err.value)


def test_scoring_weights_must_sum_to_one(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "engagement_decline: 0.25", "engagement_decline: 0.35", "scoring.yaml")
    with pytest.raises(RulesError, match="sum to 1"):
        load_scoring_rules(path)


def test_event_mode_rules_are_evaluated_through_post(tmp_path: Path) -> None:
    text = (RULES / "interventions.yaml").read_text()
    text = text.replace("  - id: critical_pip\n    priority: 1\n", "  - id: critical_pip\n    priority: 1\n    mode: event\n")
    rules = load_intervention_rules(_write(tmp_path, text))
    assert "event" in rules.compiled
    matched, actions = rules.evaluate({"risk_level": "Critical", "churn_score": 80})
    assert matched == ["critical_pip"] and actions == ["H3_pip"]
