"""web/export.py: cell formatting, formula-injection guard, RFC 4180 quoting, chunked streaming and the headers."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from enum import StrEnum

from fastapi import FastAPI
from fastapi.testclient import TestClient

from web.export import CSV_MEDIA_TYPE, cell, csv_chunks, csv_response, filename


class Colour(StrEnum):
    red = "red"


def _parse(chunks: list[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8"), newline="")))


def test_cells():
    assert cell(None) == "" and cell(True) == "true" and cell(False) == "false"
    assert cell(-3) == -3 and cell(2.5) == 2.5  # numbers stay numbers: a negative number is not a formula
    assert cell(date(2026, 11, 20)) == "2026-11-20"
    assert cell(datetime(2026, 11, 20, 9, 30, tzinfo=UTC)) == "2026-11-20T09:30:00+00:00"
    assert cell(Colour.red) == "red"
    for dangerous in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1"):
        assert cell(dangerous) == "'" + dangerous
    assert cell("plain - text = fine") == "plain - text = fine" and cell("'quoted") == "'quoted"


def test_quoting_round_trips_and_lines_end_in_crlf():
    rows = [["name", "note"], ['Lee, Amy "AJ"', "two\nlines"], ["Zoë", "=cmd|' /C calc'!A0"], [None, 7]]
    raw = b"".join(csv_chunks(rows))
    assert raw.startswith(b"name,note\r\n") and '"Lee, Amy ""AJ"""'.encode() in raw
    assert _parse([raw]) == [["name", "note"], ['Lee, Amy "AJ"', "two\nlines"], ["Zoë", "'=cmd|' /C calc'!A0"],
                             ["", "7"]]


def test_streams_in_chunks_without_losing_rows():
    rows = ([i, f"row {i}"] for i in range(1234))  # a generator: consumed as the response streams
    chunks = list(csv_chunks(rows))
    assert len(chunks) == 3  # 500 + 500 + 234 rows
    assert _parse(chunks) == [[str(i), f"row {i}"] for i in range(1234)]
    assert list(csv_chunks([])) == []


def test_filename_is_dated_and_safe():
    assert filename("queue", "csv", date(2026, 11, 20)) == "tutorpulse-queue-2026-11-20.csv"
    assert filename('../a "b"; c', "pdf", date(2026, 1, 2)) == "tutorpulse-a--b---c-2026-01-02.pdf"
    assert filename("", "csv", date(2026, 1, 2)) == "tutorpulse-export-2026-01-02.csv"


def test_response_headers():
    app = FastAPI()

    @app.get("/x.csv")
    def download() -> object:
        return csv_response([["a", "b"], ["=1", 2]], stem="report", day=date(2026, 11, 20))

    got = TestClient(app).get("/x.csv")
    assert got.headers["content-type"] == CSV_MEDIA_TYPE == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == 'attachment; filename="tutorpulse-report-2026-11-20.csv"'
    assert got.headers["cache-control"] == "no-store"
    assert got.text == "a,b\r\n'=1,2\r\n"
