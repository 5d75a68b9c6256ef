"""Rule administration pages: versions, content and diffs, the draft editor with validation, dry run, publish,
rollback and shadow. Plain forms, server-rendered; every write goes through domain/rulesets like the API.

Admins only (api.policy.ADMIN). The author of every change is the signed-in admin's user id: a stable key the
audit log shares, and not personal data in clear (names and emails are encrypted at rest; rule rows are not).
"""
from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.params import VersionNumber
from api.deps import DbDep, EngineDep, SettingsDep
from api.policy import AdminActor
from api.routes.rules import CONCURRENT
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.rulesets import dryrun
from domain.rulesets import service as ruleset_service
from domain.rulesets.content import problems_of
from domain.rulesets.models import RuleVersion, VersionStatus
from rules.loader import RulesError
from web.templating import templates

router = APIRouter(include_in_schema=False)
ACTIONS = ("save", "dry_run", "publish", "publish_shadow", "discard")
FLASH = {"saved": "Draft saved: it validated (schema, fields, actions, compile, golden tests).",
         "discarded": "Draft discarded.", "shadow_cleared": "Shadow run stopped; the version is retired again."}


def _ruleset_context(db: Session, settings: Settings, ruleset: str) -> dict[str, Any]:
    ruleset_service.seed(db, rules_dir=settings.rules_dir)
    versions = ruleset_service.list_versions(db, ruleset)
    active = next(v for v in versions if v.status == VersionStatus.active.value)
    shadow = next((v for v in versions if v.status == VersionStatus.shadow.value), None)
    draft = ruleset_service.get_draft(db, ruleset)
    return {
        "active": "rules", "ruleset": ruleset, "versions": versions, "current": active, "shadow": shadow, "draft": draft,
        "shadow_summary": ruleset_service.shadow_summary(db, ruleset, shadow.version) if shadow else None,
        "content": draft.content if draft else active.content, "problems": [], "report": None, "message": None,
    }


def _render(request: Request, engine: Engine, settings: Settings, ruleset: str, status: int = 200, **extra: Any) -> Response:
    with session_scope(engine) as db:
        try:
            context = _ruleset_context(db, settings, ruleset)
        except ruleset_service.RulesetNotFound as exc:
            return _error(request, 404, str(exc))
    context.update({k: v for k, v in extra.items() if v is not None})
    return templates.TemplateResponse(request, "rules.html", context, status_code=status)


def _error(request: Request, status: int, message: str) -> Response:
    return templates.TemplateResponse(request, "rules_error.html", {"active": "rules", "status": status, "message": message},
                                      status_code=status)


def _done(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _base(ruleset: str) -> str:
    return f"/rules/{quote(ruleset)}"


@router.get("/rules", response_class=HTMLResponse)
def rules_index(request: Request, db: DbDep, settings: SettingsDep, _actor: AdminActor) -> Response:
    summaries = ruleset_service.list_rulesets(db, rules_dir=settings.rules_dir)
    return templates.TemplateResponse(request, "rules_index.html", {"active": "rules", "rulesets": summaries})


@router.get("/rules/{ruleset}", response_class=HTMLResponse)
def ruleset_page(request: Request, ruleset: str, engine: EngineDep, settings: SettingsDep,
                 _actor: AdminActor) -> Response:
    done = request.query_params.get("done", "")
    message = FLASH.get(done) or (f"Published {done}." if done.startswith(ruleset) else None)
    return _render(request, engine, settings, ruleset, message=message)


@router.post("/rules/{ruleset}/draft", response_class=HTMLResponse)
def edit_draft(request: Request, ruleset: str, engine: EngineDep, settings: SettingsDep, actor: AdminActor,
               content: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "save") -> Response:
    """One form, five buttons: validate and save, dry run (unsaved text), publish, publish as shadow, discard."""
    if action not in ACTIONS:
        return _error(request, 400, f"unknown action {action!r}")
    kept = {"content": content}
    if action == "dry_run":
        # Dry runs read today's population for both versions: run outside any write, kept text re-shown.
        try:
            with session_scope(engine) as db:
                ruleset_service.seed(db, rules_dir=settings.rules_dir)
                ruleset_service.get_active(db, ruleset)
                report = dryrun.dry_run(db, content, as_of=utcnow(), rules_dir=settings.rules_dir, ruleset=ruleset)
        except RulesError as exc:
            return _render(request, engine, settings, ruleset, 422, **kept, problems=problems_of(exc))
        except ruleset_service.RulesetNotFound as exc:
            return _error(request, 404, str(exc))
        return _render(request, engine, settings, ruleset, **kept, report=report)
    try:
        with session_scope(engine) as db:
            ruleset_service.seed(db, rules_dir=settings.rules_dir)
            row = _apply(db, ruleset, action, content=content, author=actor.user_id)
    except RulesError as exc:
        return _render(request, engine, settings, ruleset, 422, **kept, problems=problems_of(exc))
    except ruleset_service.RulesetNotFound as exc:
        return _error(request, 404, str(exc))
    except ruleset_service.RulesetConflict as exc:
        return _render(request, engine, settings, ruleset, 409, **kept, message_error=str(exc))
    except IntegrityError:
        return _render(request, engine, settings, ruleset, 409, **kept, message_error=CONCURRENT)
    if action in ("publish", "publish_shadow"):
        return _done(f"{_base(ruleset)}/versions/{row.version}?{urlencode({'done': 'published'})}")
    return _done(f"{_base(ruleset)}?{urlencode({'done': 'saved' if action == 'save' else 'discarded'})}")


def _apply(db: Session, ruleset: str, action: str, *, content: str, author: str) -> RuleVersion | None:
    now = utcnow()
    if action == "discard":
        ruleset_service.discard_draft(db, ruleset)
        return None
    row = ruleset_service.save_draft(db, ruleset, content=content, author=author, now=now)
    if action == "save":
        return row
    status = VersionStatus.shadow if action == "publish_shadow" else VersionStatus.active
    return ruleset_service.publish(db, ruleset, author=author, now=now, status=status)


@router.get("/rules/{ruleset}/versions/{version}", response_class=HTMLResponse)
def version_page(request: Request, ruleset: str, version: VersionNumber, db: DbDep, settings: SettingsDep,
                 _actor: AdminActor) -> Response:
    ruleset_service.seed(db, rules_dir=settings.rules_dir)
    try:
        row = ruleset_service.get_version(db, ruleset, version)
    except ruleset_service.RulesetNotFound as exc:
        return _error(request, 404, str(exc))
    done = request.query_params.get("done")
    return templates.TemplateResponse(request, "rules_version.html", {
        "active": "rules", "ruleset": ruleset, "row": row,
        "message": {"published": f"{row.label} is {row.status}.", "rolled_back": f"{row.label} is active.",
                    "shadow": f"{row.label} now runs as shadow."}.get(done or ""),
    })


def _version_write(request: Request, engine: Engine, settings: Settings, ruleset: str, version: int, author: str,
                   change: str) -> Response:
    try:
        with session_scope(engine) as db:
            ruleset_service.seed(db, rules_dir=settings.rules_dir)
            if change == "rollback":
                row = ruleset_service.rollback(db, ruleset, version, author=author, now=utcnow())
            elif change == "shadow":
                row = ruleset_service.set_shadow(db, ruleset, version, author=author, now=utcnow())
            else:
                ruleset_service.clear_shadow(db, ruleset, author=author, now=utcnow())
                return _done(f"{_base(ruleset)}?done=shadow_cleared")
    except RulesError as exc:
        return _error(request, 422, "This version no longer validates:\n" + "\n".join(exc.problems))
    except ruleset_service.RulesetNotFound as exc:
        return _error(request, 404, str(exc))
    except ruleset_service.RulesetConflict as exc:
        return _error(request, 409, str(exc))
    except IntegrityError:
        return _error(request, 409, CONCURRENT)
    done = "rolled_back" if change == "rollback" else "shadow"
    return _done(f"{_base(ruleset)}/versions/{row.version}?done={done}")


@router.post("/rules/{ruleset}/versions/{version}/rollback", response_class=HTMLResponse)
def rollback(request: Request, ruleset: str, version: VersionNumber, engine: EngineDep, settings: SettingsDep,
             actor: AdminActor) -> Response:
    return _version_write(request, engine, settings, ruleset, version, actor.user_id, "rollback")


@router.post("/rules/{ruleset}/versions/{version}/shadow", response_class=HTMLResponse)
def set_shadow(request: Request, ruleset: str, version: VersionNumber, engine: EngineDep, settings: SettingsDep,
               actor: AdminActor) -> Response:
    return _version_write(request, engine, settings, ruleset, version, actor.user_id, "shadow")


@router.post("/rules/{ruleset}/shadow/clear", response_class=HTMLResponse)
def clear_shadow(request: Request, ruleset: str, engine: EngineDep, settings: SettingsDep,
                 actor: AdminActor) -> Response:
    return _version_write(request, engine, settings, ruleset, 0, actor.user_id, "clear")
