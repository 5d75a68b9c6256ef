"""Shadow runs: what a candidate version would have decided beside the active one, recorded and summarised.

The decide activity evaluates the shadow version on the same facts after the active one and calls
``record_shadow``; nothing else happens for the shadow (no case, no message), which is the point.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlmodel import Session

from domain.rulesets.models import ShadowDecision
from workflows.inputs import Decision

_LABEL = re.compile(r"^(?P<ruleset>[a-z][a-z0-9_]*)@v(?P<version>\d+)$")


def _parse_label(label: str) -> tuple[str, int]:
    m = _LABEL.match(label)
    if m is None:
        raise ValueError(f"not a rules version label (ruleset@vN): {label!r}")
    return m["ruleset"], int(m["version"])


def record_shadow(db: Session, tutor_id: str, as_of: datetime, active: Decision, shadow: Decision) -> ShadowDecision:
    """Stores what the shadow version would have decided beside what the active one did; nothing else happens.

    Insert-if-absent on (tutor, as_of, ruleset, shadow version): a retried activity records it once.
    """
    ruleset, shadow_version = _parse_label(shadow.rules_version)
    _, active_version = _parse_label(active.rules_version)
    existing = db.execute(select(ShadowDecision).where(
        ShadowDecision.tutor_id == tutor_id, ShadowDecision.as_of == as_of, ShadowDecision.ruleset == ruleset,
        ShadowDecision.shadow_version == shadow_version)).scalars().first()
    if existing is not None:
        return existing
    would_create = sorted(p.intervention_type for p in shadow.plans)
    active_create = sorted(p.intervention_type for p in active.plans)
    would_cancel = sorted(c.intervention_id for c in shadow.cancel)
    active_cancel = sorted(c.intervention_id for c in active.cancel)
    row = ShadowDecision(tutor_id=tutor_id, as_of=as_of, ruleset=ruleset, shadow_version=shadow_version,
                         active_version=active_version, would_create=would_create, would_cancel=would_cancel,
                         active_create=active_create, active_cancel=active_cancel,
                         differs=(would_create, would_cancel) != (active_create, active_cancel))
    db.add(row)
    db.flush()
    return row


@dataclass(frozen=True)
class ShadowSummary:
    ruleset: str
    version: int
    decisions: int
    differing: int
    only_shadow: dict[str, int]  # intervention type -> evaluations where only the shadow would create it
    only_active: dict[str, int]
    recent: list[ShadowDecision]  # the latest disagreements


def shadow_summary(db: Session, ruleset: str, version: int, *, sample: int = 2000, recent: int = 20) -> ShadowSummary:
    """How the shadow version has disagreed with the active one so far (type counts over the latest ``sample``)."""
    where = (ShadowDecision.ruleset == ruleset, ShadowDecision.shadow_version == version)
    total, differing = db.execute(select(func.count(), func.coalesce(func.sum(case((ShadowDecision.differs, 1), else_=0)), 0))
                                  .where(*where)).one()
    newest_first = (ShadowDecision.as_of.desc(), ShadowDecision.shadow_decision_id.desc())
    rows = list(db.execute(select(ShadowDecision).where(*where, ShadowDecision.differs)
                           .order_by(*newest_first).limit(sample)).scalars())
    only_shadow: Counter[str] = Counter()
    only_active: Counter[str] = Counter()
    for r in rows:
        only_shadow.update((Counter(r.would_create) - Counter(r.active_create)).elements())
        only_active.update((Counter(r.active_create) - Counter(r.would_create)).elements())
    return ShadowSummary(ruleset=ruleset, version=version, decisions=total, differing=differing,
                         only_shadow=dict(only_shadow.most_common()), only_active=dict(only_active.most_common()),
                         recent=rows[:recent])
