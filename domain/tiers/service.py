"""Performance tiers (PRD "Performance Tiers"): a performance index, percentile cut-offs, then red flags.

The index maps each core metric between the rules file's bad and good anchors to 0-1 and weights them. A review
of the whole population turns the target shares into index cut-offs (top 10% -> Exemplary, ...); between reviews
each evaluation maps a tutor's index through the latest cut-offs, then applies the red-flag rules, which can only
lower a tier (churn risk, pattern flags, metrics under threshold).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from domain.metrics.service import WindowMetrics, below_thresholds
from domain.tiers.models import TierCutoffs, TierHistory
from rules.scoring import TIERS, ScoringRules, ScoringRuleSet

UNRANKED_TIER = "Developing"


@dataclass(frozen=True)
class TierResult:
    tier: str
    index: float | None
    reasons: list[str] = field(default_factory=list)


def performance_index(m: WindowMetrics, rules: ScoringRuleSet) -> float | None:
    """0-1, higher is better; None when the window holds too few held sessions to rank the tutor."""
    if m.sessions_completed < rules.tiers.min_sessions:
        return None
    total = weight = 0.0
    for name, term in rules.tiers.index.items():
        value = getattr(m, name)
        if value is None:
            continue  # e.g. no first sessions in the window: the other metrics carry the index
        goodness = (value - term.bad) / (term.good - term.bad)
        total += term.weight * max(0.0, min(1.0, goodness))
        weight += term.weight
    return round(total / weight, 6) if weight else None


def cutoffs_from(indexes: Sequence[float], rules: ScoringRuleSet) -> dict[str, float]:
    """Lower index bound of each tier so the population splits by the target shares (best tier first)."""
    ranked = sorted(indexes, reverse=True)
    bounds: dict[str, float] = {}
    taken = 0.0
    for tier in TIERS[:-1]:
        taken += rules.tiers.shares[tier]
        if not ranked:
            bounds[tier] = 0.0
            continue
        position = min(len(ranked) - 1, max(0, round(taken * len(ranked)) - 1))
        bounds[tier] = ranked[position]
    bounds[TIERS[-1]] = 0.0
    return bounds


def assign(index: float | None, *, bounds: dict[str, float] | None, risk_level: str, flag_names: Sequence[str],
           metrics: WindowMetrics, rules: ScoringRuleSet) -> TierResult:
    rf = rules.tiers.red_flags
    reasons: list[str] = []
    if index is None:
        tier = UNRANKED_TIER
        reasons.append(f"fewer than {rules.tiers.min_sessions} sessions in {rules.tiers.window_days} days: not ranked")
    elif not bounds:
        tier = UNRANKED_TIER
        reasons.append("no tier review yet: not ranked")
    else:
        tier = next((t for t in TIERS if index >= bounds.get(t, 0.0)), TIERS[-1])
        reasons.append(f"performance index {index:.2f} is in the {tier} band")

    def cap(worst_allowed: str, why: str) -> None:
        nonlocal tier
        if TIERS.index(tier) < TIERS.index(worst_allowed):
            tier = worst_allowed
            reasons.append(why)

    below = below_thresholds(metrics, rules)
    if risk_level in rf.at_risk_risk_levels:
        cap("At Risk", f"churn risk {risk_level}")
    if risk_level in rf.needs_attention_risk_levels:
        cap("Needs Attention", f"churn risk {risk_level}")
    if len(below) >= rf.needs_attention_metrics_below:
        cap("Needs Attention", f"{len(below)} metrics under threshold: {', '.join(below)}")
    if rf.strong_blocked_by_flags and flag_names:
        cap("Developing", f"pattern flags: {', '.join(flag_names)}")
    if rf.exemplary_requires_all_green and (below or flag_names):
        cap("Strong", "not every metric green")
    return TierResult(tier=tier, index=index, reasons=reasons)


def latest_cutoffs(db: Session) -> TierCutoffs | None:
    return db.execute(select(TierCutoffs).order_by(TierCutoffs.effective_date.desc(), TierCutoffs.cutoff_id.desc())
                      .limit(1)).scalar_one_or_none()


def store_cutoffs(db: Session, bounds: dict[str, float], *, population: int, as_of: datetime, reason: str,
                  rules: ScoringRules) -> TierCutoffs:
    row = TierCutoffs(effective_date=as_of.date(), reason=reason, population=population, lower_bounds=bounds,
                      shares=dict(rules.spec.tiers.shares), rules_version=rules.version_label, rules_hash=rules.hash)
    db.add(row)
    db.flush()
    return row


def current_tiers(db: Session, tutor_ids: Sequence[str] | None = None) -> dict[str, str]:
    """Each tutor's latest tier from the history (one query)."""
    h = TierHistory
    stmt = select(h.tutor_id, h.tier).order_by(h.tutor_id, h.assigned_at, h.tier_history_id)
    if tutor_ids is not None:
        stmt = stmt.where(h.tutor_id.in_(list(tutor_ids)))
    return {tutor: tier for tutor, tier in db.execute(stmt)}


def record(db: Session, tutor_id: str, result: TierResult, *, previous: str | None, as_of: datetime, source: str,
           rules: ScoringRules) -> bool:
    """Adds a history row for a review, or for an evaluation that changed the tier; True when a row was added."""
    if source == "evaluation" and previous == result.tier:
        return False
    db.add(TierHistory(tutor_id=tutor_id, assigned_at=as_of, tier=result.tier, previous_tier=previous, source=source,
                       performance_index=result.index, reasons=result.reasons, rules_version=rules.version_label))
    return True
