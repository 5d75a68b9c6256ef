"""The rules version a running case was created under, by its content hash: a follow-up (A4's "does the
pattern continue?") must judge by the rules that opened the case, not by whatever is active today."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from domain.rulesets.models import RuleVersion
from rules.interventions import CompiledInterventionRules, active_intervention_rules, load_intervention_rules
from rules.loader import parse_source


@lru_cache(maxsize=32)
def _compiled(content: str, label: str) -> CompiledInterventionRules:
    return load_intervention_rules(Path(label), parse_source(content, label))


def rules_for_case(db: Session, rules_hash: str, rules_dir: Path) -> CompiledInterventionRules:
    seed = active_intervention_rules(rules_dir)
    if seed.hash == rules_hash:
        return seed
    row = db.execute(select(RuleVersion).where(RuleVersion.hash == rules_hash).limit(1)).scalar_one_or_none()
    if row is None:
        raise LookupError(f"no stored rules version with hash {rules_hash[:12]}…; was the rule store reset?")
    return _compiled(row.content, row.label)
