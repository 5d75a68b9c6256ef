"""Admin pages: the audit log search (/admin/audit) and account administration (/admin/users).

Plain forms, server-rendered. Searches and account changes go through the same code as the JSON API
(domain.audit.search, domain.users.accounts), so they refuse, and leave audit rows, the same way. The ADMIN policy
checks the role and, on every POST, the form's csrf_token.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select
from sqlalchemy.engine import Engine

from api.actor import client_address
from api.deps import EngineDep
from api.policy import AdminActor
from domain.users.accounts import LastAdmin, change_active, change_role, create_account
from core.db import session_scope
from core.errors import InputError, field_error
from domain.audit import service as audit_service
from domain.audit.models import AuditLog
from domain.audit import search as audit_search
from domain.users import service as user_service
from domain.users.models import Role
from web.export import csv_response
from web.templating import templates

router = APIRouter(include_in_schema=False)
ROLES = [r.value for r in Role]
PAGE_LIMITS = (50, 100, 200, 500)
AUDIT_FIELDS = ("actor", "action", "resource_type", "resource_id", "since", "until")
DONE = {"created": "Account created", "role": "Role changed; the account's sessions ended",
        "deactivated": "Account deactivated; its sessions ended", "activated": "Account activated"}


def _when(text: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A time from the form: the browser's datetime-local (no zone; the label says UTC) or ISO 8601 with a zone."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors[field] = "Not a date and time: use the picker, or YYYY-MM-DD HH:MM (UTC)."
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _whole(text: str, field: str, default: int, errors: dict[str, str]) -> int:
    try:
        return int(text) if text.strip() else default
    except ValueError:
        errors[field] = "Not a whole number."
        return default


def _audit_query(form: dict[str, str]) -> tuple[audit_search.AuditQuery, dict[str, str]]:
    errors: dict[str, str] = {}
    query = audit_search.AuditQuery(
        actor=form.get("actor", "")[:64], action=form.get("action", ""),
        resource_type=form.get("resource_type", "")[:40],
        resource_id=form.get("resource_id", "")[:160], since=_when(form.get("since", ""), "since", errors),
        until=_when(form.get("until", ""), "until", errors),
        limit=_whole(form.get("limit", ""), "limit", audit_search.DEFAULT_LIMIT, errors),
        offset=_whole(form.get("offset", ""), "offset", 0, errors))
    if not errors:
        try:
            query = query.checked()
        except InputError as exc:
            errors = {str(e["loc"][-1]): e["msg"].capitalize() + "." for e in exc.errors}
    return query, errors


def _page_link(query: audit_search.AuditQuery, offset: int) -> str:
    params = {k: v.strftime("%Y-%m-%dT%H:%M:%S") if isinstance(v, datetime) else v
              for k, v in ((f, getattr(query, f)) for f in AUDIT_FIELDS) if v}
    return "/admin/audit?" + urlencode({**params, "limit": query.limit, "offset": offset})


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, engine: EngineDep, actor: AdminActor) -> Response:
    form = {k: v for k, v in request.query_params.items() if k in (*AUDIT_FIELDS, "limit", "offset")}
    query, errors = _audit_query(form)
    context: dict[str, Any] = {"active": "audit", "form": form, "errors": errors, "actions": audit_search.ACTIONS,
                               "limits": PAGE_LIMITS, "page": None, "links": {}}
    if errors:
        return templates.TemplateResponse(request, "admin_audit.html", context, status_code=422)
    # Committed before the page goes out: a search that could not be recorded is not shown.
    with session_scope(engine) as db:
        page = audit_search.search_and_record(db, query, actor=actor.user_id, source=client_address(request),
                                              via="page")
    # Times shown as the picker's UTC value, so a search re-submitted from this page means the same.
    context["form"] = {**form, **{k: getattr(query, k).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
                                  for k in ("since", "until") if getattr(query, k)}}
    context["page"] = page
    context["links"] = {name: _page_link(query, offset) for name, offset in
                        (("previous", page.previous_offset), ("next", page.next_offset)) if offset is not None}
    return templates.TemplateResponse(request, "admin_audit.html", context)


def _users_page(request: Request, engine: EngineDep, *, status: int = 200, **extra: Any) -> Response:
    role = request.query_params.get("role", "")
    role = role if role in ROLES else ""
    with session_scope(engine) as db:
        users = user_service.list_users(db, role or None)
    done = request.query_params.get("done", "")
    context = {"active": "users", "users": users, "roles": ROLES, "role_filter": role, "create": {}, "errors": {},
               "error_for": None, "row_error": None, "flash": DONE.get(done),
               "flash_user": request.query_params.get("user", "")[:64] if done in DONE else None}
    context.update(extra)
    return templates.TemplateResponse(request, "admin_users.html", context, status_code=status)


def _done(what: str, user_id: str) -> Response:
    return RedirectResponse(f"/admin/users?{urlencode({'done': what, 'user': user_id})}", status_code=303)


def _blank(value: str) -> str | None:
    return value.strip() or None


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, engine: EngineDep, _actor: AdminActor) -> Response:
    return _users_page(request, engine)


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, engine: EngineDep, actor: AdminActor,
                email: Annotated[str, Form(max_length=254)] = "", name: Annotated[str, Form(max_length=200)] = "",
                role: Annotated[str, Form(max_length=16)] = "", password: Annotated[str, Form(max_length=1024)] = "",
                tutor_id: Annotated[str, Form(max_length=64)] = "",
                student_id: Annotated[str, Form(max_length=64)] = "") -> Response:
    # The password is never put back into the page: a refused form comes back with it empty.
    kept = {"email": email, "name": name, "role": role, "tutor_id": tutor_id, "student_id": student_id}
    try:
        with session_scope(engine) as db:
            user = create_account(db, by=actor.user_id, source=client_address(request), email=email, name=name,
                                  role=role, password=password or None, tutor_id=_blank(tutor_id),
                                  student_id=_blank(student_id))
            user_id = user.user_id
    except user_service.AccountError as exc:
        return _users_page(request, engine, status=422, create=kept, errors={exc.field: exc.message})
    return _done("created", user_id)


def _row_refusal(request: Request, engine: EngineDep, user_id: str, exc: Exception) -> Response:
    if isinstance(exc, user_service.AccountError) and exc.field == "user_id":
        return _users_page(request, engine, status=404, error_for=None, page_error=exc.message)
    status = 409 if isinstance(exc, LastAdmin) else 422
    message = str(exc) if isinstance(exc, LastAdmin) else f"{exc.field.replace('_', ' ')}: {exc.message}"
    return _users_page(request, engine, status=status, error_for=user_id, row_error=message)


@router.post("/admin/users/{user_id}/role", response_class=HTMLResponse)
def set_role(request: Request, user_id: str, engine: EngineDep, actor: AdminActor,
             role: Annotated[str, Form(max_length=16)] = "", tutor_id: Annotated[str, Form(max_length=64)] = "",
             student_id: Annotated[str, Form(max_length=64)] = "") -> Response:
    # Only the link that fits the new role is taken: the row's form carries both boxes.
    tutor = _blank(tutor_id) if role == Role.tutor.value else None
    student = _blank(student_id) if role == Role.student.value else None
    try:
        with session_scope(engine) as db:
            change_role(db, user_id, by=actor.user_id, source=client_address(request), role=role, tutor_id=tutor,
                        student_id=student)
    except (user_service.AccountError, LastAdmin) as exc:
        return _row_refusal(request, engine, user_id, exc)
    return _done("role", user_id)


@router.post("/admin/users/{user_id}/active", response_class=HTMLResponse)
def set_active(request: Request, user_id: str, engine: EngineDep, actor: AdminActor,
               active: Annotated[str, Form(max_length=5)] = "") -> Response:
    if active not in ("true", "false"):
        return _users_page(request, engine, status=422, error_for=user_id, row_error="active: true or false")
    try:
        with session_scope(engine) as db:
            change_active(db, user_id, by=actor.user_id, source=client_address(request), active=active == "true")
    except (user_service.AccountError, LastAdmin) as exc:
        return _row_refusal(request, engine, user_id, exc)
    return _done("activated" if active == "true" else "deactivated", user_id)


# --- CSV downloads (admin only). Both leave an audit row before any data goes out: the audit log is read under
# the same rule as its search page (resource_type audit_log), and an account list carries staff, tutor and student
# names and emails. Bad filters answer 422 naming the field, rather than exporting something not asked for.

AUDIT_CSV_COLUMNS = ["When (UTC)", "Actor", "Action", "Resource type", "Resource id", "From", "Details"]
USER_CSV_COLUMNS = ["User id", "Name", "Email", "Role", "Tutor id", "Student id", "Active", "Password set",
                    "Created", "Updated"]


def _audit_rows(engine: Engine, statement: Select) -> Iterator[list[object]]:
    yield AUDIT_CSV_COLUMNS
    with session_scope(engine) as db:  # its own session: this runs while the response streams
        for row in db.execute(statement.execution_options(yield_per=1000)).scalars():
            yield [row.at, row.actor, row.action, row.resource_type, row.resource_id, row.source,
                   json.dumps(row.details, sort_keys=True)]


@router.get("/admin/audit.csv")
def audit_csv(request: Request, engine: EngineDep, actor: AdminActor) -> Response:
    form = {k: v for k, v in request.query_params.items() if k in AUDIT_FIELDS}
    query, errors = _audit_query(form)
    if errors:
        raise InputError([field_error(["query", k], v) for k, v in errors.items()])
    with session_scope(engine) as db:
        mark = audit_service.record(db, actor=actor.user_id, action="read", resource_type=audit_search.RESOURCE_TYPE,
                                    source=client_address(request), details={"via": "csv", "filters": query.filters()})
        mark_id = mark.audit_id
    # Rows written before this export's own: a snapshot that does not list itself, as a search does not.
    return csv_response(_audit_rows(engine, audit_search.matching(query).where(AuditLog.audit_id < mark_id)),
                        stem="audit-log")


@router.get("/admin/users.csv")
def users_csv(request: Request, engine: EngineDep, actor: AdminActor) -> Response:
    role = request.query_params.get("role", "")
    if role and role not in ROLES:
        raise InputError([field_error(["query", "role"], f"one of {', '.join(ROLES)}")])
    with session_scope(engine) as db:
        users = user_service.list_users(db, role or None)
        rows: list[list[object]] = [USER_CSV_COLUMNS] + [
            [u.user_id, u.name, u.email, u.role, u.tutor_id, u.student_id, u.is_active, u.password_hash is not None,
             u.created_at, u.updated_at] for u in users]
        audit_service.record(db, actor=actor.user_id, action="read", resource_type="user",
                             source=client_address(request),
                             details={"via": "csv", "role": role or None, "rows": len(users)})
    return csv_response(rows, stem="accounts")
