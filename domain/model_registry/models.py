"""One row per trained model: where its file is, what it was trained on, how it scored, what became of it."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class ModelStatus(StrEnum):
    candidate = "candidate"  # trained and registered, not yet judged against the live model
    live = "live"  # the version predictions use; at most one per kind
    retired = "retired"  # was live, replaced by a better candidate
    rejected = "rejected"  # lost the champion/challenger comparison


class ModelKind(StrEnum):
    churn = "churn"
    first_session = "first_session"


# A partial unique index makes "one live version per kind" a database guarantee: two promotions racing each
# other cannot both commit (the second fails and writes nothing).
_ONE_LIVE = Index("uq_model_versions_one_live", "kind", unique=True,
                  sqlite_where=text("status = 'live'"), postgresql_where=text("status = 'live'"))


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (_ONE_LIVE,)

    # kind + training time + content hash, e.g. churn-20261130T231500Z-ab12cd34
    version: str = Field(primary_key=True, max_length=80)
    kind: str = Field(max_length=20, index=True)
    status: str = Field(default=ModelStatus.candidate.value, max_length=10)
    path: str = Field(max_length=200)  # relative to settings.models_dir
    sha256: str = Field(max_length=64)  # of the file's bytes, checked on every load
    features: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    criterion: float | None = None  # validation score the champion/challenger comparison uses
    data_start: date
    data_end: date
    label_source: str = Field(max_length=20)  # "truth" | "inactivity"
    training_rows: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    promoted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
