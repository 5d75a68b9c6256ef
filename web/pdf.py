"""A small PDF report builder on matplotlib (already a dependency): A4 pages of headings, wrapped paragraphs,
key-value lists, tables that continue across pages (header repeated) and bar or line charts.

Use::

    from web import pdf
    data = pdf.build("Analytics report", [
        pdf.Heading("Churn by tenure"),
        pdf.Paragraph("Share of tutors with no session in the last 14 days ..."),
        pdf.KeyValues([("As of", "2026-11-20"), ("Period", "90 days")]),
        pdf.Table(["Cohort", "Tutors", "Churn rate"], [["Under 30 days", 12, "8.3%"]], numeric=[1, 2]),
        pdf.BarChart("Churn rate by tenure", ["<30", "30-89"], {"Churn rate": [0.08, 0.05]}, percent=True),
    ], subtitle="as of 2026-11-20")                       # -> bytes starting with %PDF
    return pdf.pdf_response(data, stem="analytics")       # a download named tutorpulse-analytics-<date>.pdf

Text is laid out by measuring it with matplotlib's own font metrics (DejaVu Sans, shipped with matplotlib), so
wrapping is exact rather than guessed from character counts. Fonts are embedded as TrueType (Type 42), which
keeps the text selectable and searchable. Cells and paragraphs are plain text (no markup); None shows as "—".
"""
from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Union

import matplotlib
from fastapi.responses import Response
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from core.types import utcnow
from web.export import download_headers, filename

PDF_MEDIA_TYPE = "application/pdf"
PAGE_W, PAGE_H = 595.28, 841.89  # A4 in points
MARGIN = 50.0
WIDTH = PAGE_W - 2 * MARGIN
BODY, SMALL = 10.0, 8.5
HEADING_SIZES = {1: 15.0, 2: 12.5, 3: 11.0}
LEADING = 1.35  # line height / font size
CELL_PAD = 4.0
CHART_H = 230.0
INK, MUTED, LINE, HEAD_BG, ZEBRA = "#1b1f24", "#4f5864", "#c3c9d1", "#e9edf3", "#f5f7fa"
SERIES_COLOURS = ("#1f4fb8", "#c25e00", "#0b6b2f", "#6a1b9a", "#a3161a")
# rc settings are process-wide: one report is built at a time so another's settings never leak into it.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1  # 1-3


@dataclass(frozen=True)
class Paragraph:
    text: str
    small: bool = False  # notes and definitions, in the smaller muted type


@dataclass(frozen=True)
class KeyValues:
    rows: Sequence[tuple[str, object]]


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str | None = None
    numeric: Sequence[int] = ()  # indexes of right-aligned columns


@dataclass(frozen=True)
class BarChart:
    title: str
    labels: Sequence[str]
    series: Mapping[str, Sequence[float | None]]  # name -> one value per label; None draws no bar
    y_label: str = ""
    percent: bool = False  # values are fractions (0.25), the axis reads 25%


@dataclass(frozen=True)
class LineChart(BarChart):
    """The same data shape as BarChart, drawn as lines over the labels (e.g. days)."""


Block = Union[Heading, Paragraph, KeyValues, Table, BarChart, LineChart]  # noqa: UP007 - a runtime alias


def text_of(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass
class _Layout:
    """Pages being filled top to bottom; ``y`` is the distance from the top edge of the current page."""

    title: str
    pages: list[Figure] = field(default_factory=list)
    y: float = PAGE_H
    renderer: RendererAgg = field(default_factory=lambda: RendererAgg(10, 10, 72))
    _widths: dict[tuple[str, float, bool], float] = field(default_factory=dict)

    # --- measuring and placing --------------------------------------------------------------------------
    def width(self, text: str, size: float, bold: bool = False) -> float:
        key = (text, size, bold)
        if key not in self._widths:
            prop = FontProperties(family="DejaVu Sans", size=size, weight="bold" if bold else "normal")
            self._widths[key] = self.renderer.get_text_width_height_descent(text, prop, ismath=False)[0]
        return self._widths[key]

    def wrap(self, text: str, size: float, width: float, bold: bool = False) -> list[str]:
        """Greedy word wrap to ``width`` points; a word longer than a line is cut where it must be. Lines are
        measured as the sum of their words and spaces (each measured once): kerning across a space is nil, and
        a point of slack covers rounding."""
        limit = width - 1.0
        space = self.width("x x", size, bold) - 2 * self.width("x", size, bold)
        lines: list[str] = []
        for paragraph in str(text).split("\n"):
            line: list[str] = []
            used = 0.0
            for word in paragraph.split(" "):
                for piece in self._pieces(word, size, limit, bold):
                    w = self.width(piece, size, bold)
                    if line and used + space + w > limit:
                        lines.append(" ".join(line))
                        line, used = [], 0.0
                    used += (space if line else 0.0) + w
                    line.append(piece)
            lines.append(" ".join(line))
        return lines

    def _pieces(self, word: str, size: float, limit: float, bold: bool) -> list[str]:
        if len(word) <= 1 or self.width(word, size, bold) <= limit:
            return [word]
        pieces, piece, used = [], "", 0.0
        for char in word:  # per-character widths, with 3% kept for the kerning they leave out
            w = self.width(char, size, bold)
            if piece and used + w > limit * 0.97:
                pieces.append(piece)
                piece, used = "", 0.0
            piece, used = piece + char, used + w
        return [*pieces, piece]

    @property
    def page(self) -> Figure:
        return self.pages[-1]

    def new_page(self) -> None:
        self.pages.append(Figure(figsize=(PAGE_W / 72, PAGE_H / 72)))
        self.y = MARGIN

    def room(self, height: float) -> None:
        """A new page unless ``height`` points still fit above the bottom margin (a block taller than a page
        starts on a new page and runs over the margin rather than looping)."""
        if not self.pages or (self.y + height > PAGE_H - MARGIN and self.y > MARGIN):
            self.new_page()

    def text(self, x: float, y: float, text: str, size: float, *, bold: bool = False, colour: str = INK,
             align: str = "left") -> None:
        self.page.text(x / PAGE_W, 1 - y / PAGE_H, text, fontsize=size, fontweight="bold" if bold else "normal",
                       color=colour, ha=align, va="top", family="DejaVu Sans")

    def rect(self, x: float, y: float, w: float, h: float, colour: str) -> None:
        self.page.add_artist(Rectangle((x / PAGE_W, 1 - (y + h) / PAGE_H), w / PAGE_W, h / PAGE_H,
                                       transform=self.page.transFigure, facecolor=colour, edgecolor="none"))

    def rule(self, y: float, colour: str = LINE) -> None:
        self.rect(MARGIN, y, WIDTH, 0.6, colour)

    def lines(self, lines: list[str], size: float, *, bold: bool = False, colour: str = INK, gap: float = 0) -> None:
        step = size * LEADING
        for line in lines:
            self.room(step)
            self.text(MARGIN, self.y, line, size, bold=bold, colour=colour)
            self.y += step
        self.y += gap

    # --- blocks -------------------------------------------------------------------------------------------
    def heading(self, block: Heading, keep: float = BODY * LEADING * 3) -> None:
        """``keep``: the height of the next block's start, kept on the same page as the heading."""
        size = HEADING_SIZES.get(block.level, BODY)
        lines = self.wrap(block.text, size, WIDTH, bold=True)
        self.room(size * LEADING * (len(lines) + 1) + keep)  # never alone at the foot of a page
        self.y += size * 0.6
        self.lines(lines, size, bold=True, gap=size * 0.3)

    def paragraph(self, block: Paragraph) -> None:
        size = SMALL if block.small else BODY
        self.lines(self.wrap(block.text, size, WIDTH), size, colour=MUTED if block.small else INK, gap=BODY * 0.6)

    def key_values(self, block: KeyValues) -> None:
        key_w = min(WIDTH * 0.4, max((self.width(str(k), BODY, True) for k, _ in block.rows), default=0) + 12)
        step = BODY * LEADING
        for key, value in block.rows:
            keys = self.wrap(str(key), BODY, key_w - 12, bold=True)
            values = self.wrap(text_of(value), BODY, WIDTH - key_w)
            self.room(step * max(len(keys), len(values)))
            for i, line in enumerate(keys):
                self.text(MARGIN, self.y + i * step, line, BODY, bold=True, colour=MUTED)
            for i, line in enumerate(values):
                self.text(MARGIN + key_w, self.y + i * step, line, BODY)
            self.y += step * max(len(keys), len(values))
        self.y += BODY * 0.6

    def _column_widths(self, block: Table) -> list[float]:
        """Natural widths if they fit; else each column at least its longest word (so words are not cut) and
        the remaining width shared by how much more each would like; cut words only when even that is too wide."""
        n = len(block.columns)
        sample = block.rows[:200]  # enough to judge a column's width; the rest wrap to it

        def cells(i: int) -> list[tuple[str, bool]]:
            return [(str(block.columns[i]), True)] + [(text_of(r[i]), False) for r in sample if i < len(r)]

        natural = [max(self.width(t, SMALL, b) for t, b in cells(i)) + 2 * CELL_PAD for i in range(n)]
        if sum(natural) <= WIDTH:
            return [w + (WIDTH - sum(natural)) / n for w in natural]
        words = [max(self.width(w, SMALL, b) for t, b in cells(i) for w in t.split() or [""]) + 2 * CELL_PAD
                 for i in range(n)]
        floor = words if sum(words) <= WIDTH else [WIDTH / n] * n
        need = [max(0.0, w - f) for w, f in zip(natural, floor, strict=True)]
        extra = WIDTH - sum(floor)
        return [f + (extra * w / sum(need) if sum(need) else extra / n) for f, w in zip(floor, need, strict=True)]

    def table(self, block: Table) -> None:
        widths = self._column_widths(block)
        step = SMALL * LEADING

        def cells(values: Sequence[object], bold: bool) -> list[list[str]]:
            return [self.wrap(text_of(values[i]) if i < len(values) else "", SMALL, w - 2 * CELL_PAD, bold)
                    for i, w in enumerate(widths)]

        header = cells(block.columns, True)
        header_h = step * max(len(c) for c in header) + 2 * CELL_PAD

        def draw(row: list[list[str]], height: float, *, bold: bool, background: str | None) -> None:
            if background:
                self.rect(MARGIN, self.y, WIDTH, height, background)
            x = MARGIN
            for i, (lines, w) in enumerate(zip(row, widths, strict=True)):
                right = i in block.numeric and not bold
                for j, line in enumerate(lines):
                    self.text(x + w - CELL_PAD if right else x + CELL_PAD, self.y + CELL_PAD + j * step, line, SMALL,
                              bold=bold, align="right" if right else "left")
                x += w
            self.y += height
            self.rule(self.y)

        def start(continued: bool) -> None:
            caption = block.caption or ""
            if continued:
                caption = f"{caption} (continued)".strip()
            if caption:
                self.lines(self.wrap(caption, SMALL, WIDTH, bold=True), SMALL, bold=True, colour=MUTED)
            draw(header, header_h, bold=True, background=HEAD_BG)

        first = cells(block.rows[0], False) if block.rows else [[""]]
        self.room(header_h + step * (max(len(c) for c in first) + 3))
        start(False)
        for k, values in enumerate(block.rows):
            row = cells(values, False)
            height = step * max(len(c) for c in row) + 2 * CELL_PAD
            if self.y + height > PAGE_H - MARGIN:
                self.new_page()
                start(True)
            draw(row, height, bold=False, background=ZEBRA if k % 2 else None)
        self.y += BODY

    def chart(self, block: BarChart) -> None:
        self.room(CHART_H + BODY * 2)
        tilted = len(block.labels) > 5 or max((len(str(x)) for x in block.labels), default=0) > 14
        bottom = 80.0 if tilted else 30.0  # room for the tick labels inside the chart's box
        ax = self.page.add_axes(((MARGIN + 40) / PAGE_W, 1 - (self.y + CHART_H - bottom) / PAGE_H,
                                 (WIDTH - 40) / PAGE_W, (CHART_H - 30 - bottom) / PAGE_H))
        ax.set_title(block.title, fontsize=BODY, loc="left", color=INK)
        n = max(1, len(block.series))
        positions = list(range(len(block.labels)))
        values = [v for series in block.series.values() for v in series if v is not None]
        for k, (name, series) in enumerate(block.series.items()):
            ys = [float("nan") if v is None else v for v in series]
            colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
            if isinstance(block, LineChart):
                ax.plot(positions, ys, marker="o", markersize=3, color=colour, label=name)
            else:
                width = 0.8 / n
                ax.bar([p - 0.4 + width * (k + 0.5) for p in positions], ys, width=width, color=colour, label=name)
        ax.set_xticks(positions)
        ax.set_xticklabels(list(block.labels), fontsize=SMALL - 1, rotation=30 if tilted else 0,
                           ha="right" if tilted else "center")
        ax.tick_params(axis="y", labelsize=SMALL - 1)
        ax.set_ylabel(block.y_label, fontsize=SMALL)
        top = max(values, default=0)
        if block.percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            top = top or 1.0  # nothing to show: a plain 0-100% axis rather than matplotlib's -5..5%
        if min(values, default=0) >= 0:
            ax.set_ylim(0, top * 1.15 or 1)
        if not values:
            ax.text(0.5, 0.5, "No data in this period", transform=ax.transAxes, ha="center", va="center",
                    fontsize=BODY, color=MUTED)
        ax.spines[["top", "right"]].set_visible(False)
        if len(block.series) > 1:
            ax.legend(fontsize=SMALL - 1, frameon=False)
        self.y += CHART_H + BODY

    def footers(self, subtitle: str | None) -> None:
        for number, page in enumerate(self.pages, start=1):
            self.pages_footer(page, f"{self.title}{' · ' + subtitle if subtitle else ''}",
                              f"Page {number} of {len(self.pages)}")

    @staticmethod
    def pages_footer(page: Figure, left: str, right: str) -> None:
        y = 1 - (PAGE_H - MARGIN / 2) / PAGE_H
        page.text(MARGIN / PAGE_W, y, left, fontsize=SMALL - 1, color=MUTED, ha="left", va="center")
        page.text((PAGE_W - MARGIN) / PAGE_W, y, right, fontsize=SMALL - 1, color=MUTED, ha="right", va="center")


def lay_out(title: str, blocks: Iterable[Block], *, subtitle: str | None = None) -> list[Figure]:
    """The report's pages as matplotlib figures, A4 (build() saves them; tests and previews can render them)."""
    layout = _Layout(title=title)
    layout.new_page()
    layout.lines(layout.wrap(title, 18.0, WIDTH, bold=True), 18.0, bold=True, gap=2)
    if subtitle:
        layout.lines(layout.wrap(subtitle, BODY, WIDTH), BODY, colour=MUTED)
    layout.lines([f"Generated {utcnow():%Y-%m-%d %H:%M} UTC by TutorPulse"], SMALL, colour=MUTED, gap=BODY)
    handlers = {Heading: layout.heading, Paragraph: layout.paragraph, KeyValues: layout.key_values,
                Table: layout.table, BarChart: layout.chart, LineChart: layout.chart}
    items = list(blocks)
    for k, block in enumerate(items):
        handler = handlers.get(type(block))
        if handler is None:
            raise TypeError(f"not a PDF block: {type(block).__name__}")
        following = items[k + 1] if k + 1 < len(items) else None
        if isinstance(block, Heading) and isinstance(following, BarChart):
            layout.heading(block, keep=CHART_H)
        elif isinstance(block, Heading) and isinstance(following, Table):
            layout.heading(block, keep=SMALL * LEADING * 6)  # its caption, header and first rows
        else:
            handler(block)
    layout.footers(subtitle)
    return layout.pages


def build(title: str, blocks: Iterable[Block], *, subtitle: str | None = None) -> bytes:
    """The report as PDF bytes: the title (and subtitle) on top of page 1, then the blocks in order, with a
    footer on every page ("<title> · <subtitle>", "Page n of N"). The title is also the document's metadata
    title, which PDF readers show and screen readers announce."""
    pages = lay_out(title, blocks, subtitle=subtitle)
    buffer = io.BytesIO()
    with _LOCK, matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        with PdfPages(buffer, metadata={"Title": title, "Subject": subtitle or "", "Creator": "TutorPulse"}) as doc:
            for page in pages:
                doc.savefig(page)
    return buffer.getvalue()


def pdf_response(data: bytes, *, stem: str, day: date | None = None) -> Response:
    """The PDF as a download named tutorpulse-<stem>-<date>.pdf, not cached (reports carry risk data)."""
    return Response(data, media_type=PDF_MEDIA_TYPE, headers=download_headers(filename(stem, "pdf", day)))
