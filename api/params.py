"""Parameter types shared by routes. Every integer a caller sends is bounded: an unbounded one reaches the
database driver, which refuses a Python int past 64 bits with a 500 instead of the 422 it deserves."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

MAX_OFFSET = 1_000_000
MAX_VERSION = 1_000_000

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A published version's number")]

# Report dates are shifted by up to a few years of windows; outside these years the arithmetic would overflow.
FIRST_YEAR, LAST_YEAR = 1970, 9000
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:  # noqa: ANN401 - whatever the query string held
    """Only what the schema promises (an RFC 3339 date-time): pydantic alone would also take "0.5" as a Unix time."""
    if isinstance(value, str) and not RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with zone, e.g. 2026-11-20T09:00:00Z")
    return value


def _in_years(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be within the years {FIRST_YEAR}-{LAST_YEAR}")
    return value


def _utc_in_years(value: datetime) -> datetime:
    _in_years(value)
    return value.astimezone(UTC)


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_utc_in_years)]
Day = Annotated[date, AfterValidator(_in_years)]
