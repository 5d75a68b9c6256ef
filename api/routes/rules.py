"""Rule administration as JSON: list, view, edit, dry-run, publish, roll back and shadow rule set versions.

Refusals: 422 for a rule set that does not validate (``problems`` name file, line, rule and field; ``detail``
has FastAPI's shape), 404 for an unknown rule set, version or draft, 409 for a request that does not fit the
current state (a stale draft, rolling back to the active version). Every write runs in one transaction of
its own, so a refused publish leaves the store exactly as it was.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.actor import Actor
from api.deps import DbDep, EngineDep, SettingsDep
from api.params import VersionNumber
from api.policy import AdminActor
from api.schemas.rules import (
    DraftIn, DryRunIn, DryRunRead, ProblemRead, PublishIn, RulesetRead, RulesRefused, RuleVersionDetail,
    RuleVersionSummary, ShadowSummaryRead,
)
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.rulesets import dryrun
from domain.rulesets import service as ruleset_service
from domain.rulesets.content import problems_of
from domain.rulesets.models import VersionStatus
from rules.loader import RulesError

router = APIRouter(tags=["rules"])
CONCURRENT = "another change to this rule set was saved at the same moment; reload it and try again"
T = TypeVar("T")
REFUSALS = {422: {"model": RulesRefused, "description": "the rule set does not validate"},
            404: {"description": "unknown rule set, version or draft"},
            409: {"description": "does not fit the rule set's current state"}}


def resolve_author(actor: Actor) -> str:
    """Who is changing the rules: the signed-in admin's user id (the web pages call this too)."""
    return actor.user_id


def refused(exc: RulesError) -> JSONResponse:
    problems = problems_of(exc)
    detail = [{"loc": ["body", "content", *(p.field.split(".") if p.field else [])], "msg": p.text, "type": "rules_invalid"}
              for p in problems]
    body = RulesRefused(detail=detail, problems=[ProblemRead(**vars(p)) for p in problems])
    return JSONResponse(status_code=422, content=body.model_dump(mode="json"))


def _http(exc: Exception) -> HTTPException:
    if isinstance(exc, ruleset_service.RulesetNotFound):
        return HTTPException(status_code=404, detail=str(exc))
    return HTTPException(status_code=409, detail=str(exc))


def _write(engine: Engine, settings: Settings, change: Callable[[Session], T]) -> T | JSONResponse:
    """Runs ``change`` in its own transaction: any refusal rolls all of it back before the answer is built."""
    try:
        with session_scope(engine) as db:
            ruleset_service.seed(db, rules_dir=settings.rules_dir)
            return change(db)
    except RulesError as exc:
        return refused(exc)
    except (ruleset_service.RulesetNotFound, ruleset_service.RulesetConflict) as exc:
        raise _http(exc) from None
    except IntegrityError:
        # The one-draft / one-active / unique-number indexes: another change to this rule set committed first.
        raise HTTPException(status_code=409, detail=CONCURRENT) from None


def _read(db: Session, settings: Settings, fetch: Callable[[], T]) -> T:
    ruleset_service.seed(db, rules_dir=settings.rules_dir)
    try:
        return fetch()
    except ruleset_service.RulesetNotFound as exc:
        raise _http(exc) from None


@router.get("/rules", response_model=list[RulesetRead])
def list_rulesets(db: DbDep, settings: SettingsDep, _actor: AdminActor) -> list[RulesetRead]:
    return [RulesetRead(ruleset=s.ruleset, owner=s.owner, versions=s.versions,
                        active_version=s.active.version if s.active else None, active_hash=s.active.hash if s.active else None,
                        shadow_version=s.shadow.version if s.shadow else None,
                        draft=RuleVersionSummary.model_validate(s.draft) if s.draft else None)
            for s in ruleset_service.list_rulesets(db, rules_dir=settings.rules_dir)]


@router.get("/rules/{ruleset}/versions", response_model=list[RuleVersionSummary], responses=REFUSALS)
def list_versions(ruleset: str, db: DbDep, settings: SettingsDep, _actor: AdminActor):  # noqa: ANN201
    return _read(db, settings, lambda: ruleset_service.list_versions(db, ruleset))


@router.get("/rules/{ruleset}/versions/{version}", response_model=RuleVersionDetail, responses=REFUSALS)
def get_version(ruleset: str, version: VersionNumber, db: DbDep, settings: SettingsDep, _actor: AdminActor):  # noqa: ANN201
    return _read(db, settings, lambda: ruleset_service.get_version(db, ruleset, version))


@router.get("/rules/{ruleset}/draft", response_model=RuleVersionDetail, responses=REFUSALS)
def get_draft(ruleset: str, db: DbDep, settings: SettingsDep, _actor: AdminActor):  # noqa: ANN201
    draft = _read(db, settings, lambda: ruleset_service.get_draft(db, ruleset))
    if draft is None:
        raise HTTPException(status_code=404, detail=f"rule set {ruleset!r} has no draft")
    return draft


@router.put("/rules/{ruleset}/draft", response_model=RuleVersionDetail, responses=REFUSALS)
def save_draft(ruleset: str, body: DraftIn, engine: EngineDep, settings: SettingsDep, actor: AdminActor):  # noqa: ANN201
    """Validates and stores the draft (replacing any): schema, fields and types, actions, trial compile, golden tests."""
    author = resolve_author(actor)
    return _write(engine, settings, lambda db: ruleset_service.save_draft(db, ruleset, content=body.content, author=author,
                                                                          now=utcnow()))


@router.delete("/rules/{ruleset}/draft", status_code=204, responses=REFUSALS)
def discard_draft(ruleset: str, engine: EngineDep, settings: SettingsDep, _actor: AdminActor) -> Response:
    _write(engine, settings, lambda db: ruleset_service.discard_draft(db, ruleset))
    return Response(status_code=204)


@router.post("/rules/{ruleset}/draft/dry-run", response_model=DryRunRead, responses=REFUSALS)
def dry_run(ruleset: str, engine: EngineDep, settings: SettingsDep, _actor: AdminActor, body: DryRunIn | None = None):  # noqa: ANN201
    """What the draft (or ``content``) would create and cancel for today's tutors, against the active version."""
    body = body or DryRunIn()
    as_of = body.as_of or utcnow()

    def run(db: Session) -> dryrun.DryRunReport:
        if body.content is not None:
            ruleset_service.get_active(db, ruleset)  # 404 for an unknown rule set before any validation
            return dryrun.dry_run(db, body.content, as_of=as_of, rules_dir=settings.rules_dir, ruleset=ruleset)
        return dryrun.dry_run_draft(db, ruleset, as_of=as_of, rules_dir=settings.rules_dir)

    report = _write(engine, settings, run)  # writes nothing; a transaction only so seeding and reads share one
    if isinstance(report, JSONResponse):
        return report
    return DryRunRead(**{k: getattr(report, k) for k in DryRunRead.model_fields if k != "identical"},
                      identical=report.identical)


@router.post("/rules/{ruleset}/draft/publish", response_model=RuleVersionDetail, responses=REFUSALS)
def publish(ruleset: str, body: PublishIn, engine: EngineDep, settings: SettingsDep, actor: AdminActor):  # noqa: ANN201
    """The draft becomes the next version, active (the active one retires) or shadow. Validated again."""
    author = resolve_author(actor)

    def change(db: Session):  # noqa: ANN202
        now = utcnow()
        if body.content is not None:
            ruleset_service.save_draft(db, ruleset, content=body.content, author=author, now=now)
        return ruleset_service.publish(db, ruleset, author=author, now=now, status=VersionStatus(body.status))

    return _write(engine, settings, change)


@router.post("/rules/{ruleset}/versions/{version}/rollback", response_model=RuleVersionDetail, responses=REFUSALS)
def rollback(ruleset: str, version: VersionNumber, engine: EngineDep, settings: SettingsDep, actor: AdminActor):  # noqa: ANN201
    """A new active version with the content of ``version`` (rolling back to the shadow promotes it)."""
    author = resolve_author(actor)
    return _write(engine, settings, lambda db: ruleset_service.rollback(db, ruleset, version, author=author, now=utcnow()))


@router.post("/rules/{ruleset}/versions/{version}/shadow", response_model=RuleVersionSummary, responses=REFUSALS)
def set_shadow(ruleset: str, version: VersionNumber, engine: EngineDep, settings: SettingsDep, actor: AdminActor):  # noqa: ANN201
    """Runs ``version`` beside the active one; it only records what it would have done (GET …/shadow)."""
    author = resolve_author(actor)
    return _write(engine, settings, lambda db: ruleset_service.set_shadow(db, ruleset, version, author=author, now=utcnow()))


@router.get("/rules/{ruleset}/shadow", response_model=ShadowSummaryRead, responses=REFUSALS)
def shadow_summary(ruleset: str, db: DbDep, settings: SettingsDep, _actor: AdminActor):  # noqa: ANN201
    """How the shadow version's decisions have differed from the active one's so far."""
    row = _read(db, settings, lambda: ruleset_service.get_shadow(db, ruleset))
    return ruleset_service.shadow_summary(db, ruleset, row.version)


@router.delete("/rules/{ruleset}/shadow", response_model=RuleVersionSummary, responses=REFUSALS)
def clear_shadow(ruleset: str, engine: EngineDep, settings: SettingsDep, actor: AdminActor):  # noqa: ANN201
    """Stops the shadow run; the version goes back to retired."""
    who = resolve_author(actor)
    return _write(engine, settings, lambda db: ruleset_service.clear_shadow(db, ruleset, author=who, now=utcnow()))
