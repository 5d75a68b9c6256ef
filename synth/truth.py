"""Ground truth of the simulation: what really happened to each tutor.

Kept in tables of their own that no product code (API, pages, features, scoring) reads: models are evaluated
against them and never trained on them. Written only by the synthetic engine.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class ChurnCause(StrEnum):
    """The PRD's four churn definitions (§1.4)."""

    resignation = "resignation"  # explicit departure, 1-2% a month
    inactivity = "inactivity"  # no sessions for more than 14 consecutive days
    reduced_activity = "reduced_activity"  # under 50% of baseline sessions/week for 3+ weeks
    engagement_decline = "engagement_decline"  # login frequency down 30%+ over 2 weeks


class TruthTutor(SQLModel, table=True):
    __tablename__ = "synth_truth_tutors"

    tutor_id: str = Field(primary_key=True, max_length=64)
    world_id: int = Field(foreign_key="synth_world.world_id", index=True)
    initial_archetype: str = Field(max_length=32)
    onboarded_at: datetime = Field(sa_type=UTCDateTime)
    # When and why the tutor truly churned (None: still active at the end of what was simulated).
    churned_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    churn_cause: str | None = Field(default=None, max_length=24)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TruthTransition(SQLModel, table=True):
    """A change of a tutor's latent state (e.g. steady -> declining, declining -> recovering)."""

    __tablename__ = "synth_truth_transitions"

    transition_id: str = Field(primary_key=True, max_length=120)  # deterministic: tutor + time + state
    tutor_id: str = Field(max_length=64, index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    from_state: str = Field(max_length=24)
    to_state: str = Field(max_length=24)
    reason: str | None = Field(default=None, max_length=80)  # e.g. "drift", "intervention:H1_coaching_session"


def churn_truth(db, world_id: int | None = None):  # noqa: ANN001, ANN201 - Session -> ml.labels.ChurnTruth
    """When each tutor of a world truly churned, for labelling (the model is trained on product data and
    scored against this; it never sees it as a feature). Observed up to the world's latest simulated time."""
    from sqlalchemy import select

    from ml.labels import ChurnTruth
    from synth.models import SynthWorld

    stmt = select(SynthWorld).order_by(SynthWorld.world_id.desc())
    world = db.get(SynthWorld, world_id) if world_id is not None else db.execute(stmt).scalars().first()
    if world is None:
        raise LookupError("no synthetic world in this database: use inactivity labels (real data)")
    rows = db.execute(select(TruthTutor.tutor_id, TruthTutor.churned_at).where(TruthTutor.world_id == world.world_id))
    observed = max(world.backfill_end, world.last_tick_at or world.backfill_end)
    return ChurnTruth(churned_at={t: c for t, c in rows}, observed_until=observed)
