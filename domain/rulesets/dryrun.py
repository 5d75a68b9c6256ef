"""Dry run: what a draft would do to today's tutor population, against what the active version does.

Both versions are planned on the same facts and the same existing cases (domain/interventions/planning.py,
the code the decide activity runs), read once; nothing is written. Differences are by intervention type for
what would be created (ids carry the evaluation time, so they never match across runs) and by intervention
id for open cases that would be cancelled.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from domain.interventions.models import Intervention
from domain.interventions.planning import population_facts, preview_population
from domain.rulesets import service as ruleset_service
from domain.rulesets.content import compile_text, normalise
from domain.sessions.service import IN_CHUNK
from domain.tutors.models import Tutor
from workflows.inputs import Decision


@dataclass(frozen=True)
class TypeCounts:
    """Per intervention type: cases each version would start now, how many tutors gain or lose one, cancellations."""

    intervention_type: str
    active: int
    draft: int
    added: int  # tutors the draft would start it for and the active version would not
    removed: int  # tutors the active version would start it for and the draft would not
    cancel_active: int
    cancel_draft: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.cancel_active != self.cancel_draft)


@dataclass(frozen=True)
class CancelChange:
    intervention_id: str
    intervention_type: str


@dataclass(frozen=True)
class TutorChange:
    tutor_id: str
    name: str
    risk_level: str | None
    churn_score: float | None
    created_only_by_draft: list[str] = field(default_factory=list)  # intervention types
    created_only_by_active: list[str] = field(default_factory=list)
    cancelled_only_by_draft: list[CancelChange] = field(default_factory=list)  # open cases
    cancelled_only_by_active: list[CancelChange] = field(default_factory=list)


@dataclass(frozen=True)
class DryRunReport:
    ruleset: str
    as_of: datetime
    draft_label: str
    draft_hash: str
    active_label: str
    active_hash: str
    tutors: int  # tutors with stored facts that were evaluated
    seconds: float
    types: list[TypeCounts]
    changes: list[TutorChange]  # only tutors where the two versions differ

    @property
    def identical(self) -> bool:
        return not self.changes


def _types(decision: Decision | None) -> Counter[str]:
    return Counter(p.intervention_type for p in decision.plans) if decision else Counter()


def _cancels(decision: Decision | None) -> set[str]:
    return {c.intervention_id for c in decision.cancel} if decision else set()


def _lookup(db: Session, model_col, key_col, keys: set[str]) -> dict[str, str]:  # noqa: ANN001
    out: dict[str, str] = {}
    ids = sorted(keys)
    for i in range(0, len(ids), IN_CHUNK):
        out.update({k: v for k, v in db.execute(select(key_col, model_col).where(key_col.in_(ids[i:i + IN_CHUNK])))})
    return out


def compare(db: Session, facts: dict[str, dict], active: dict[str, Decision],
            draft: dict[str, Decision]) -> tuple[list[TypeCounts], list[TutorChange]]:
    per_type: dict[str, Counter[str]] = {}
    raw: list[tuple[str, Counter[str], Counter[str], set[str], set[str]]] = []
    for tutor_id in sorted(set(active) | set(draft)):
        a, d = active.get(tutor_id), draft.get(tutor_id)
        a_types, d_types, a_cancel, d_cancel = _types(a), _types(d), _cancels(a), _cancels(d)
        for itype, n in a_types.items():
            per_type.setdefault(itype, Counter())["active"] += n
        for itype, n in d_types.items():
            per_type.setdefault(itype, Counter())["draft"] += n
        only_d, only_a = d_types - a_types, a_types - d_types
        for itype in only_d:
            per_type[itype]["added"] += 1
        for itype in only_a:
            per_type[itype]["removed"] += 1
        if only_d or only_a or a_cancel != d_cancel:
            raw.append((tutor_id, only_d, only_a, d_cancel - a_cancel, a_cancel - d_cancel))
    cancel_ids = {i for d in (active, draft) for dec in d.values() for i in _cancels(dec)}
    cancel_types = _lookup(db, Intervention.intervention_type, Intervention.intervention_id, cancel_ids)
    for decisions, key in ((active, "cancel_active"), (draft, "cancel_draft")):
        for dec in decisions.values():
            for iid in _cancels(dec):
                per_type.setdefault(cancel_types.get(iid, "unknown"), Counter())[key] += 1
    names = _lookup(db, Tutor.name, Tutor.tutor_id, {r[0] for r in raw})
    changes = [
        TutorChange(tutor_id=t, name=names.get(t, t), risk_level=facts.get(t, {}).get("risk_level"),
                    churn_score=facts.get(t, {}).get("churn_score"),
                    created_only_by_draft=sorted(only_d.elements()), created_only_by_active=sorted(only_a.elements()),
                    cancelled_only_by_draft=[CancelChange(i, cancel_types.get(i, "unknown")) for i in sorted(cd)],
                    cancelled_only_by_active=[CancelChange(i, cancel_types.get(i, "unknown")) for i in sorted(ca)])
        for t, only_d, only_a, cd, ca in raw
    ]
    types = [TypeCounts(intervention_type=k, active=c["active"], draft=c["draft"], added=c["added"], removed=c["removed"],
                        cancel_active=c["cancel_active"], cancel_draft=c["cancel_draft"]) for k, c in sorted(per_type.items())]
    return types, changes


def dry_run(db: Session, draft_text: str, *, as_of: datetime, rules_dir: Path,
            ruleset: str = ruleset_service.INTERVENTIONS) -> DryRunReport:
    """Plans ``draft_text`` and the active version for every tutor's latest stored facts as of ``as_of``.

    Raises RulesError (naming ``<ruleset>@draft``, rule and field) when the draft does not validate.
    """
    started = time.perf_counter()
    draft = compile_text(normalise(draft_text), f"{ruleset}@draft", ruleset=ruleset)
    active = ruleset_service.active_rules(db, rules_dir, ruleset)
    facts = population_facts(db, as_of=as_of)  # read once: both versions see exactly the same population
    active_decisions = preview_population(db, active, as_of=as_of, facts=facts)
    draft_decisions = preview_population(db, draft, as_of=as_of, facts=facts)
    types, changes = compare(db, facts, active_decisions, draft_decisions)
    return DryRunReport(ruleset=ruleset, as_of=as_of, draft_label=f"{ruleset}@draft", draft_hash=draft.hash,
                        active_label=active.version_label, active_hash=active.hash, tutors=len(facts),
                        seconds=time.perf_counter() - started, types=types, changes=changes)


def dry_run_draft(db: Session, ruleset: str, *, as_of: datetime, rules_dir: Path) -> DryRunReport:
    """The stored draft's dry run (RulesetNotFound when there is none)."""
    draft = ruleset_service.get_draft(db, ruleset)
    if draft is None:
        raise ruleset_service.RulesetNotFound(f"rule set {ruleset!r} has no draft; save one first")
    return dry_run(db, draft.content, as_of=as_of, rules_dir=rules_dir, ruleset=ruleset)
