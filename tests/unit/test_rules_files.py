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
    assert rules.version_label == "tutor_interventions@v1" and len(rules.hash) == 64
    scoring = load_scoring_rules(RULES / "scoring.yaml")
    assert scoring.version_label == "churn_scoring@v2"
    assert sum(scoring.spec.weights.values()) == pytest.approx(1)


def test_every_prd_risk_level_maps_to_automated_and_human_interventions() -> None:
    rules = load_intervention_rules(RULES / "interventions.yaml")
    kinds = {name: spec.kind for name, spec in rules.spec.interventions.items()}
    for facts in ({"risk_level": "Low", "tier": "Exemplary", "first_sessions_recent": 1},
                  {"risk_level": "Medium", "tier": "Developing", "tenure_days": 20, "metrics_below_threshold": 1},
                  {"risk_level": "High"}, {"risk_level": "Critical"}):
        _, actions = rules.evaluate(facts)
        assert {kinds[a] for a in actions} == {"automated", "human"}, facts


def test_comments_and_layout_do_not_change_the_hash(tmp_path: Path) -> None:
    text = (RULES / "interventions.yaml").read_text()
    reformatted = _write(tmp_path, "# an extra comment\n" + yaml.safe_dump(yaml.safe_load(text), sort_keys=False))
    assert load_intervention_rules(reformatted).hash == load_intervention_rules(RULES / "interventions.yaml").hash


def test_unknown_field_names_file_line_rule_and_field(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "{field: risk_level, op: eq, value: High}", "{field: risk_lvl, op: eq, value: High}")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    msg = str(err.value)
    assert f"{path}:{_line_of(path, 'risk_lvl')}" in msg
    assert "rule 'high_risk'" in msg and "when.0.field" in msg and "risk_lvl" in msg


def test_unknown_action_and_bad_types_are_reported_together(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "then: [A1_coaching_tips, H1_coaching_session, H4_retention_interview]",
                    "then: [A1_coaching_tips, H9_unknown]")
    text = path.read_text().replace("{field: tenure_days, op: lt, value: 60}", "{field: tenure_days, op: lt, value: sixty}")
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert len(err.value.problems) == 2
    assert any("H9_unknown" in p and "rule 'high_risk'" in p for p in err.value.problems)
    assert any("'sixty' is not a number" in p and "rule 'new_tutor_mentoring'" in p for p in err.value.problems)


def test_schema_errors_point_at_the_line(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "    sla_hours: 48\n    escalate_to_role: ops_manager\n    window_days: 14",
                    "    sla_hours: -5\n    escalate_to_role: ops_manager\n    window_days: 14")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert f"{path}:{_line_of(path, 'sla_hours: -5')}" in str(err.value)
    assert "interventions.H1_coaching_session.sla_hours" in str(err.value)


def test_failing_golden_test_rejects_the_file(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "then: [A1_coaching_tips, H1_coaching_session, H3_pip, H4_retention_interview]",
                    "then: [A1_coaching_tips, H1_coaching_session, H4_retention_interview]")
    with pytest.raises(RulesError) as err:
        load_intervention_rules(path)
    assert "golden test failed" in str(err.value) and "rule 'critical_risk'" in str(err.value)


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
    text = text.replace("  - id: high_risk\n    priority: 2\n    mode: fact", "  - id: high_risk\n    priority: 2\n    mode: event")
    rules = load_intervention_rules(_write(tmp_path, text))
    matched, actions = rules.evaluate({"risk_level": "High"})
    assert matched == ["high_risk"] and "H1_coaching_session" in actions
