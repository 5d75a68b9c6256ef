"""Searching the audit log (the admin API and page). Read-only: nothing here, or anywhere in the product, updates
or deletes an audit row. Looking at the log is itself a read of sensitive data, so `search_and_record` leaves a
row of its own (resource_type "audit_log") naming the filters used."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlmodel import Session

from core.errors import InputError, field_error
from domain.audit import service as audit_service
from domain.audit.models import AuditLog

ACTIONS = ("read", "write")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 10_000_000  # beyond any real log; keeps the OFFSET inside every database's integer range
RESOURCE_TYPE = "audit_log"


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None  # a prefix: "tutor_id=t_12" finds every row about that tutor
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def checked(self, loc: str = "query") -> AuditQuery:
        """The query with blank filters dropped; InputError naming the field for a query that cannot mean anything.

        The API's Query() bounds already refuse most of this; the page hands its raw form here.
        """
        problems = []
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                problems.append(field_error([loc, name], "give a time zone (e.g. +00:00)", "timezone_aware"))
        if not problems and self.since and self.until and self.since > self.until:
            problems.append(field_error([loc, "since"], "since is after until: nothing can match", "value_error"))
        if self.action and self.action not in ACTIONS:
            problems.append(field_error([loc, "action"], f"one of {', '.join(ACTIONS)}", "enum"))
        if not 1 <= self.limit <= MAX_LIMIT:
            problems.append(field_error([loc, "limit"], f"between 1 and {MAX_LIMIT}", "value_error"))
        if not 0 <= self.offset <= MAX_OFFSET:
            problems.append(field_error([loc, "offset"], f"between 0 and {MAX_OFFSET}", "value_error"))
        for name in ("actor", "action", "resource_type", "resource_id"):
            value = getattr(self, name)
            if value and any(ord(c) < 32 or ord(c) == 127 for c in value):
                problems.append(field_error([loc, name], "no control characters", "string_pattern_mismatch"))
        if problems:
            raise InputError(problems)
        blank = {k: None for k in ("actor", "action", "resource_type", "resource_id")
                 if isinstance(getattr(self, k), str) and not getattr(self, k).strip()}
        return AuditQuery(**{**asdict(self), **blank})

    def filters(self) -> dict[str, str]:
        """The filters in use, as text: what the audit row of a search records and what the pages link with."""
        return {k: (v.isoformat() if isinstance(v, datetime) else str(v)) for k, v in asdict(self).items()
                if v is not None and k not in ("limit", "offset")}


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditLog]
    total: int
    query: AuditQuery

    @property
    def next_offset(self) -> int | None:
        end = self.query.offset + len(self.rows)
        return end if end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.query.offset - self.query.limit) if self.query.offset > 0 else None


def _conditions(q: AuditQuery) -> list:
    conditions = []
    if q.actor:
        conditions.append(AuditLog.actor == q.actor)
    if q.action:
        conditions.append(AuditLog.action == q.action)
    if q.resource_type:
        conditions.append(AuditLog.resource_type == q.resource_type)
    if q.resource_id:
        # autoescape: a "%" or "_" typed into the filter is matched literally, not as a wildcard.
        conditions.append(AuditLog.resource_id.startswith(q.resource_id, autoescape=True))
    if q.since:
        conditions.append(AuditLog.at >= q.since)
    if q.until:
        conditions.append(AuditLog.at <= q.until)
    return conditions


def search(db: Session, query: AuditQuery) -> AuditPage:
    """Matching rows, newest first (ties by insertion order, newest first), with the total across all pages."""
    q = query.checked()
    conditions = _conditions(q)
    total = db.execute(select(func.count()).select_from(AuditLog).where(*conditions)).scalar_one()
    rows = db.execute(select(AuditLog).where(*conditions).order_by(AuditLog.at.desc(), AuditLog.audit_id.desc())
                      .limit(q.limit).offset(q.offset)).scalars().all()
    return AuditPage(rows=list(rows), total=total, query=q)


def matching(query: AuditQuery) -> Select:
    """Every row matching the filters (limit and offset ignored), newest first: what an export streams."""
    q = query.checked()
    return select(AuditLog).where(*_conditions(q)).order_by(AuditLog.at.desc(), AuditLog.audit_id.desc())


def search_and_record(db: Session, query: AuditQuery, *, actor: str, source: str | None, via: str) -> AuditPage:
    """search(), then the audit row saying who looked and for what (after the search, so it is not in its own
    results; it shows in the next one). Same transaction: a search that cannot be recorded is not answered."""
    page = search(db, query)
    audit_service.record(db, actor=actor, action="read", resource_type=RESOURCE_TYPE, source=source,
                         details={"via": via, "filters": page.query.filters(), "limit": page.query.limit,
                                  "offset": page.query.offset, "returned": len(page.rows), "total": page.total})
    return page
