"""web/pdf.py: A4 pages, text wrapped within the margins, long tables continued over pages with their header,
charts with gaps, and the text readable back out of the file (Type 42 fonts keep it as characters)."""
from __future__ import annotations

import re
import zlib

import pytest

from web import pdf

_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_BLOCK = re.compile(rb"BT(.*?)ET", re.S)
_STRING = re.compile(rb"\((?:\\.|[^\\)])*\)", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(literal: bytes) -> bytes:
    out, i = bytearray(), 1
    while i < len(literal) - 1:
        c = literal[i:i + 1]
        if c == b"\\":
            nxt = literal[i + 1:i + 2]
            octal = re.match(rb"[0-7]{1,3}", literal[i + 1:i + 4])
            if octal:
                out.append(int(octal.group(), 8))
                i += 1 + len(octal.group())
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


def pdf_pages(data: bytes) -> list[list[str]]:
    """The text lines of each page (one per BT..ET block; matplotlib writes one block per text item)."""
    pages = []
    for raw in _STREAM.findall(data):
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            continue
        if b" Tf" not in content or b"BT" not in content:
            continue  # a font program or an image, not a page's content
        lines = []
        for block in _BLOCK.findall(content):
            joined = b"".join(_unescape(s) for s in _STRING.findall(block))
            lines.append(joined.decode("utf-16-be", errors="replace") if len(joined) % 2 == 0 else joined.decode("latin-1"))
        pages.append(lines)
    return pages


def test_a4_pages_with_title_and_footer():
    data = pdf.build("Quarterly retention", [pdf.Heading("Overview"), pdf.Paragraph("All tutors."),
                                             pdf.KeyValues([("As of", "2026-11-20"), ("Tutors", 287)])],
                     subtitle="as of 2026-11-20")
    assert data.startswith(b"%PDF")
    assert b"/MediaBox [ 0 0 595.28 841.89 ]" in data  # A4 in points
    assert b"/Title (Quarterly retention)" in data
    (page,) = pdf_pages(data)
    assert page[0] == "Quarterly retention" and "Overview" in page and "All tutors." in page
    assert "287" in page and "Page 1 of 1" in page and "Quarterly retention · as of 2026-11-20" in page


def test_paragraphs_wrap_inside_the_margins():
    words = [f"word{i}" for i in range(900)] + ["x" * 300]  # and one "word" longer than a line
    layout = pdf._Layout(title="t")
    lines = layout.wrap(" ".join(words), pdf.BODY, pdf.WIDTH)
    assert len(lines) > 20
    assert all(layout.width(line, pdf.BODY) <= pdf.WIDTH for line in lines)
    tokens = " ".join(lines).split()
    assert tokens[:900] == words[:900]  # nothing lost or reordered
    assert "".join(tokens[900:]) == "x" * 300 and len(tokens[900:]) >= 2  # the long word, cut into pieces

    pages = pdf_pages(pdf.build("Wrapped", [pdf.Paragraph(" ".join(words))]))
    text = " ".join(line for page in pages for line in page)
    assert len(pages) >= 2 and "word0 " in text and "word899" in text  # a long paragraph flows onto page 2
    assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, start=1))


def test_long_tables_continue_with_their_header():
    rows = [[f"tutor_{i:03d}", i, None if i % 7 == 0 else f"{i / 3:.1f}%"] for i in range(150)]
    pages = pdf_pages(pdf.build("Roster", [pdf.Table(["Tutor", "Sessions", "Share"], rows, caption="Everyone",
                                                     numeric=[1, 2])]))
    assert len(pages) >= 3
    ids = [line for page in pages for line in page if line.startswith("tutor_")]
    assert ids == [f"tutor_{i:03d}" for i in range(150)]  # every row once, in order
    for n, page in enumerate(pages, start=1):
        assert "Tutor" in page and "Sessions" in page, f"page {n} lacks the header"
        assert f"Page {n} of {len(pages)}" in page
        assert ("Everyone (continued)" in page) == (n > 1)
    assert not any("None" in line for page in pages for line in page)  # None shows as a dash, not "None"


def test_wide_table_cells_wrap_instead_of_overflowing():
    long = "a rather long explanation of why this tutor was flagged, " * 3
    layout_pages = pdf.lay_out("Wide", [pdf.Table(["Tutor", "Reason"], [["t1", long], ["t2", "short"]])])
    assert len(layout_pages) == 1
    pages = pdf_pages(pdf.build("Wide", [pdf.Table(["Tutor", "Reason"], [["t1", long], ["t2", "short"]])]))
    reason_lines = [line for line in pages[0] if "explanation" in line or "flagged" in line]
    assert len(reason_lines) >= 2  # wrapped within its column
    assert " ".join(line for line in pages[0] if line not in ("Wide",)).count("why this tutor") == 3


def test_charts_and_bad_blocks():
    data = pdf.build("Charts", [
        pdf.BarChart("Churn by cohort", ["<30", "30-89", "90+"], {"Churn": [0.1, None, 0.3], "Risk": [0.2, 0.1, None]},
                     percent=True),
        pdf.LineChart("Daily at-risk tutors", [f"11-{d:02d}" for d in range(1, 31)], {"At risk": list(range(30))}),
        pdf.BarChart("Nothing yet", ["A", "B"], {"Rate": [None, None]}, percent=True),
    ])
    text = [line for page in pdf_pages(data) for line in page]
    assert "Churn by cohort" in text and "Daily at-risk tutors" in text and "No data in this period" in text
    assert "30%" in text  # the percent axis
    with pytest.raises(TypeError, match="not a PDF block"):
        pdf.build("Bad", ["just a string"])  # type: ignore[list-item]
