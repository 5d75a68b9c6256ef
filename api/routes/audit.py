"""The audit log as JSON (admin only): search by who, what and when. Read-only by design: there is no route that
updates or deletes an audit row, and the database refuses both (migration 0009). Each search is itself recorded
(resource_type "audit_log"), so looking at who read what leaves a trace too."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BeforeValidator

from api.actor import client_address
from api.deps import EngineDep
from api.policy import AdminActor
from api.schemas.admin import PLAIN, AuditEntry, AuditSearchRead
from core.db import session_scope
from domain.audit import search as audit_search

router = APIRouter(tags=["audit"])
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:  # noqa: ANN401 - whatever the query string held
    """Only what the schema promises (an RFC 3339 date-time): pydantic alone would also take "0.5" as a Unix time."""
    if not isinstance(value, str):
        return value
    if not RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with zone, e.g. 2026-11-20T09:00:00Z")
    parsed = datetime.fromisoformat(value.upper())
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00:00+05:00 has no UTC time: refused here, not by the database
    except OverflowError:
        raise ValueError("outside the years 1-9999 in UTC") from None
    return parsed


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


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
