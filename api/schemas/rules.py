"""Request and response bodies of the rule administration API (/api/v1/rules)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_CONTENT = 200_000  # characters; the shipped rule set is ~10k


class RuleVersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ruleset: str
    label: str  # tutor_interventions@v3, or tutor_interventions@draft
    version: int | None = Field(description="None for the draft: a number is assigned when it is published")
    status: Literal["draft", "shadow", "active", "retired"]
    hash: str
    author: str
    created_at: datetime
    published_at: datetime | None
    changelog: str
    based_on_version: int | None


class RuleVersionDetail(RuleVersionSummary):
    content: str
    diff: str = Field(description="unified diff against the version it replaced, or, for a draft, the active one")


class RulesetRead(BaseModel):
    ruleset: str
    owner: str
    active_version: int | None
    active_hash: str | None
    shadow_version: int | None
    draft: RuleVersionSummary | None
    versions: int


class Authored(BaseModel):
    """A rule change's body. Its author is the signed-in admin (api.routes.rules.resolve_author), never a field."""


class DraftIn(Authored):
    content: str = Field(min_length=1, max_length=MAX_CONTENT, description="the rule set YAML, comments kept")


class PublishIn(Authored):
    status: Literal["active", "shadow"] = Field(
        default="active", description="active replaces the active version; shadow runs beside it and only records")
    content: str | None = Field(default=None, min_length=1, max_length=MAX_CONTENT,
                                description="save this as the draft first (same transaction); omit to publish the stored draft")


class DryRunIn(BaseModel):
    content: str | None = Field(default=None, min_length=1, max_length=MAX_CONTENT,
                                description="rule set text to try; omit to dry-run the stored draft")
    as_of: AwareDatetime | None = Field(default=None, description="evaluation time; default now")


class ProblemRead(BaseModel):
    text: str = Field(description="the whole message: file:line: rule 'id' field 'path': problem")
    file: str | None
    line: int | None
    rule: str | None
    field: str | None
    message: str


class RulesRefused(BaseModel):
    detail: list[dict]
    # Empty when the request itself was malformed (FastAPI's own 422): only a rule set that does not validate has problems.
    problems: list[ProblemRead] = []


class TypeCountsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    intervention_type: str
    active: int
    draft: int
    added: int
    removed: int
    cancel_active: int
    cancel_draft: int


class CancelChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    intervention_id: str
    intervention_type: str


class TutorChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tutor_id: str
    name: str
    risk_level: str | None
    churn_score: float | None
    created_only_by_draft: list[str]
    created_only_by_active: list[str]
    cancelled_only_by_draft: list[CancelChangeRead]
    cancelled_only_by_active: list[CancelChangeRead]


class DryRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ruleset: str
    as_of: datetime
    draft_hash: str
    active_label: str
    active_hash: str
    tutors: int
    seconds: float
    identical: bool
    types: list[TypeCountsRead]
    changes: list[TutorChangeRead]


class ShadowDecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tutor_id: str
    as_of: datetime
    active_version: int
    would_create: list[str]
    active_create: list[str]
    would_cancel: list[str]
    active_cancel: list[str]


class ShadowSummaryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ruleset: str
    version: int
    decisions: int
    differing: int
    only_shadow: dict[str, int]
    only_active: dict[str, int]
    recent: list[ShadowDecisionRead]
