"""Facts that need a tutor's stored daily history, added to the evaluation's own facts before the rules run:
how many days in a row the tutor has been High/Critical (H1 "churn > 50 for 7+ days") and in the current tier
(H3 "Needs Attention 30+ days", H5 "Exemplary 60+ days"). Batched, so the dry run enriches everyone at once."""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from domain.model_scoring.drive import is_model_driven
from domain.scoring.models import ChurnPrediction
from domain.sessions.service import IN_CHUNK
from domain.tiers.models import TierHistory

ELEVATED = ("High", "Critical")
LOOKBACK_DAYS = 180  # streaks longer than this read as this: every rule threshold is far below it


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + IN_CHUNK] for i in range(0, len(ids), IN_CHUNK)]


def _elevated_streaks(db: Session, base: dict[str, dict[str, Any]], today) -> dict[str, int]:  # noqa: ANN001
    elevated_days: dict[str, set] = defaultdict(set)
    elevated = [t for t, f in base.items() if f.get("risk_level") in ELEVATED]
    p = ChurnPrediction
    # When the model's score drives (rules/scoring.yaml), a past day counts by the level that drove it: the
    # model's where it scored that day, else the rule level it fell back to.
    for model_driven, level in ((False, p.risk_level), (True, func.coalesce(p.model_risk_level, p.risk_level))):
        for chunk in _chunks([t for t in elevated if is_model_driven(base[t]) == model_driven]):
            rows = db.execute(select(p.tutor_id, p.prediction_date).where(
                p.tutor_id.in_(chunk), level.in_(ELEVATED),
                p.prediction_date >= today - timedelta(days=LOOKBACK_DAYS),
                p.prediction_date < today))
            for tutor_id, day in rows:
                elevated_days[tutor_id].add(day)
    out = {}
    for tutor_id, facts in base.items():
        if facts.get("risk_level") not in ELEVATED:
            out[tutor_id] = 0
            continue
        streak, day = 1, today - timedelta(days=1)  # today counts from the facts themselves
        while day in elevated_days[tutor_id]:
            streak, day = streak + 1, day - timedelta(days=1)
        out[tutor_id] = streak
    return out


def _tier_days(db: Session, base: dict[str, dict[str, Any]], as_of: datetime) -> dict[str, int]:
    history: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for chunk in _chunks(list(base)):
        rows = db.execute(select(TierHistory.tutor_id, TierHistory.assigned_at, TierHistory.tier).where(
            TierHistory.tutor_id.in_(chunk), TierHistory.assigned_at <= as_of,
            TierHistory.assigned_at >= as_of - timedelta(days=LOOKBACK_DAYS)))
        for tutor_id, at, tier in rows:
            history[tutor_id].append((at, tier))
    out = {}
    for tutor_id, facts in base.items():
        since = as_of
        for at, tier in sorted(history[tutor_id], reverse=True):
            if tier != facts.get("tier"):
                break
            since = at  # reviews re-record an unchanged tier: walk back over every row of the same tier
        out[tutor_id] = max(0, (as_of - since).days)
    return out


def enrich(db: Session, base: dict[str, dict[str, Any]], *, as_of: datetime) -> dict[str, dict[str, Any]]:
    """``base`` is tutor id -> the evaluation's facts; returns new dicts with the history facts added."""
    as_of = as_of.astimezone(UTC)
    streaks = _elevated_streaks(db, base, as_of.date())
    tier_days = _tier_days(db, base, as_of)
    return {t: {**f, "days_high_or_critical": streaks[t], "days_in_tier": tier_days[t]} for t, f in base.items()}
