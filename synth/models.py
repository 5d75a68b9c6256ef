from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class SynthWorld(SQLModel, table=True):
    """The parameters a simulated world was built from, so the live feed continues the backfill's world."""

    __tablename__ = "synth_world"

    world_id: int | None = Field(default=None, primary_key=True)
    seed: int
    epoch: datetime = Field(sa_type=UTCDateTime)  # business time the simulation starts at (backfill start)
    # The backfill's end: the world's time anchors (new tutors' onboarding, churn days) hang off it.
    backfill_end: datetime = Field(sa_type=UTCDateTime)
    n_tutors: int
    # The scenario file the world was built from; the live feed continues with the same one (and refuses a
    # file whose content changed since, which would silently give the world other laws).
    scenario_path: str = Field(default="", max_length=500)
    scenario_hash: str = Field(default="", max_length=64)
    sessions_per_day: int
    last_tick_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
