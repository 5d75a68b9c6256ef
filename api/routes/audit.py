"""The audit log as JSON (admin only): search by who, what and when. Read-only by design: there is no route that
updates or deletes an audit row, and the database refuses both (migration 0009). Each search is itself recorded
(resource_type "audit_log"), so looking at who read what leaves a trace too."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.actor import client_address
from api.deps import EngineDep
from api.params import Instant
from api.policy import AdminActor
from api.schemas.admin import PLAIN, AuditEntry, AuditSearchRead
from core.db import session_scope
from domain.audit import search as audit_search

router = APIRouter(tags=["audit"])
Text = Annotated[str | None, Query(pattern=PLAIN)]  # each filter adds its own bound and description below


@router.get("/audit", response_model=AuditSearchRead, summary="Search the audit log, newest first",
            responses={422: {"description": "a filter cannot be used (since after until, a time without zone)"}})
def search_audit(
    request: Request, engine: EngineDep, actor: AdminActor,
    by: Annotated[Text, Query(alias="actor", max_length=64, description="user id, or system:<process>")] = None,
    action: Annotated[Literal["read", "write"] | None, Query()] = None,
    resource_type: Annotated[Text, Query(max_length=40, description="e.g. student_data, tutor_risk, user")] = None,
    resource_id: Annotated[Text, Query(max_length=160, description="prefix of the resource id")] = None,
    since: Annotated[Instant | None, Query(description="from this time (RFC 3339 with zone), inclusive")] = None,
    until: Annotated[Instant | None, Query(description="up to this time (RFC 3339 with zone), inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=audit_search.MAX_LIMIT)] = audit_search.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=audit_search.MAX_OFFSET)] = 0,
) -> AuditSearchRead:
    query = audit_search.AuditQuery(actor=by, action=action, resource_type=resource_type, resource_id=resource_id,
                                    since=since, until=until, limit=limit, offset=offset)
    # Its own transaction, committed before answering: a search whose audit row cannot be written gets no answer.
    with session_scope(engine) as db:
        page = audit_search.search_and_record(db, query, actor=actor.user_id, source=client_address(request), via="api")
        items = [AuditEntry.model_validate(row) for row in page.rows]
    return AuditSearchRead(total=page.total, limit=page.query.limit, offset=page.query.offset,
                           next_offset=page.next_offset, items=items)
