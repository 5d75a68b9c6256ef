"""Rule set versions as admins wrote them, and what a shadow candidate would have done."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class VersionStatus(StrEnum):
    draft = "draft"  # the one editable copy per rule set; no number until it is published
    shadow = "shadow"  # runs beside the active version and only records what it would have done
    active = "active"  # the version that creates interventions
    retired = "retired"


def _one_per_ruleset(status: VersionStatus) -> Index:
    # A partial unique index makes "at most one draft / shadow / active per rule set" a database guarantee, so
    # two admins publishing at the same moment cannot both win: the second commit fails and writes nothing.
    where = text(f"status = '{status.value}'")
    return Index(f"uq_rule_versions_one_{status.value}", "ruleset", unique=True,
                 sqlite_where=where, postgresql_where=where)


class RuleVersion(SQLModel, table=True):
    """One row per published version (append-only: content never changes once it has a number) plus the draft.

    ``status`` is the version's current role; the ``status:`` line inside ``content`` is the one it was
    published with (rewritten at publish so the file on record says which version it is).
    """

    __tablename__ = "rule_versions"
    __table_args__ = (
        UniqueConstraint("ruleset", "version", name="uq_rule_version"),
        _one_per_ruleset(VersionStatus.draft),
        _one_per_ruleset(VersionStatus.shadow),
        _one_per_ruleset(VersionStatus.active),
    )

    rule_version_id: int | None = Field(default=None, primary_key=True)
    ruleset: str = Field(max_length=40, index=True)
    version: int | None = None  # None for the draft: the number is assigned at publish (max + 1)
    status: str = Field(max_length=10)
    content: str = Field(sa_column=Column(Text, nullable=False))  # the YAML as the admin wrote it, comments kept
    hash: str = Field(max_length=64)  # content_hash of the parsed YAML: what interventions record
    author: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    changelog: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Unified diff against the version this one replaced (publish, rollback) or was drafted from.
    diff: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    based_on_version: int | None = None  # the active version a draft started from; for a rollback, its source

    @property
    def label(self) -> str:
        return f"{self.ruleset}@{'draft' if self.version is None else f'v{self.version}'}"


class ShadowDecision(SQLModel, table=True):
    """What the shadow candidate would have decided for one tutor evaluation, beside what the active one did."""

    __tablename__ = "shadow_decisions"
    __table_args__ = (
        # Insert-if-absent on this key: a retried decide activity records the evaluation once.
        UniqueConstraint("tutor_id", "as_of", "ruleset", "shadow_version", name="uq_shadow_decision"),
        Index("ix_shadow_decisions_ruleset_version", "ruleset", "shadow_version"),
    )

    shadow_decision_id: int | None = Field(default=None, primary_key=True)
    tutor_id: str = Field(foreign_key="tutors.tutor_id", max_length=64, index=True)
    as_of: datetime = Field(sa_type=UTCDateTime)
    ruleset: str = Field(max_length=40)
    shadow_version: int
    active_version: int
    would_create: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # types
    would_cancel: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # intervention ids
    active_create: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active_cancel: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    differs: bool = False  # shadow and active disagree on what to create or cancel
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
