"""CSV downloads for the pages' tables: streamed, quoted by the csv module, safe to open in a spreadsheet.

Use::

    from web.export import csv_response
    return csv_response(rows, stem="queue")          # rows: an iterable of sequences, the header row first

``rows`` may be a generator (it is consumed while the response streams; one that reads the database must open
its own session, since the route's has closed by then). The file is named ``tutorpulse-<stem>-<YYYY-MM-DD>.csv``
(``day`` defaults to today, UTC), sent as ``text/csv; charset=utf-8`` with ``Cache-Control: no-store``: exports
carry tutor and risk data that must not sit in shared caches.

Cells: None is empty, booleans are ``true``/``false``, dates and times ISO 8601, numbers as Python prints them.
Formula injection: a text cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return, which some
spreadsheets skip before reading a formula) gets a leading ``'``, so a spreadsheet shows it as text instead of
running it (OWASP's CSV injection advice). Numbers are written as they are: -3 is a number, not a formula.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from enum import Enum

from fastapi.responses import StreamingResponse

from core.types import utcnow

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK_ROWS = 500  # rows per network write: one write per row would cost more than the formatting


def cell(value: object) -> str | int | float:
    """One value as written to the file (see the module doc)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, Enum):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = value.value if isinstance(value, Enum) else str(value)
    text = str(text)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_chunks(rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """The rows as UTF-8 CSV (RFC 4180 quoting, CRLF line ends), a few hundred rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    pending = 0
    for row in rows:
        writer.writerow([cell(v) for v in row])
        pending += 1
        if pending >= _CHUNK_ROWS:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending or buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def filename(stem: str, extension: str, day: date | None = None) -> str:
    """``tutorpulse-<stem>-<YYYY-MM-DD>.<extension>``; the stem is reduced to letters, digits and dashes."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in stem).strip("-") or "export"
    return f"tutorpulse-{safe}-{(day or utcnow().date()).isoformat()}.{extension}"


def download_headers(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


def csv_response(rows: Iterable[Sequence[object]], *, stem: str, day: date | None = None) -> StreamingResponse:
    return StreamingResponse(csv_chunks(rows), media_type=CSV_MEDIA_TYPE,
                             headers=download_headers(filename(stem, "csv", day)))
