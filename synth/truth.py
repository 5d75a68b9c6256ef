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
