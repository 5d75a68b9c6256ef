"""Analytics & Reporting (PRD UI System 1, 1.3): the page, and the same figures as CSV and PDF downloads.

Filters are query parameters: as_of (a UTC day, not in the future), days (7-365), subject, measure (what the
heatmap shades by) and new_days (the new-vs-tenured split). The page forgives a hand-edited or stale link as the
queue page does, falling back to the default, and says which field it reset; the downloads, read by scripts as
much as by people, refuse a bad value with 422 naming the field instead of quietly exporting something else.

The figures are computed once per filter set and data version (domain/dashboard/changes.change_token, which
moves with every ingested session, feedback, evaluation, prediction and task change) and kept for a few minutes:
a 90-day scan of ~270k sessions takes longer than a page may, and nothing it reads has changed in between.
Every route declares the STAFF policy, which audits each call as a read of tutor risk data.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.deps import DbDep, SettingsDep
from api.params import FIRST_YEAR
from api.policy import StaffActor
from core.config import Settings
from core.errors import InputError, field_error
from core.types import utcnow
from domain.dashboard import analytics
from domain.dashboard.changes import change_token
from domain.interventions.effectiveness import settings_from_rules
from rules.interventions import active_intervention_rules
from rules.scoring import active_scoring_rules
from web import analytics_export, pdf
from web.export import csv_response
from web.templating import templates

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS, MIN_DAYS, MAX_DAYS = 30, 7, 365
CACHE_SECONDS, CACHE_ENTRIES = 300, 16
# Heatmap shading bands (share of tutors): fixed, so a colour means the same on every visit and in the legend.
HEAT_BANDS = (0.05, 0.10, 0.20, 0.35)


@dataclass(frozen=True)
class Filters:
    as_of: date
    days: int
    subject: str | None
    measure: str
    new_days: int

    def query(self, **changes: Any) -> str:  # noqa: ANN401
        """The query string of these filters (defaults left out), e.g. for the download links."""
        values = {"as_of": self.as_of.isoformat(), "days": self.days, "subject": self.subject,
                  "measure": self.measure, "new_days": self.new_days, **changes}
        defaults = {"days": DEFAULT_DAYS, "measure": "churn", "new_days": analytics.NEW_TUTOR_DAYS[0]}
        return urlencode({k: v for k, v in values.items() if v not in (None, "") and defaults.get(k) != v})


def parse_filters(params: dict[str, str], today: date) -> tuple[Filters, dict[str, str]]:
    """The filters, each bad value replaced by its default, and {field: what was wrong} for those."""
    problems: dict[str, str] = {}
    as_of = today
    if params.get("as_of"):
        try:
            as_of = date.fromisoformat(params["as_of"].strip())
            if as_of.year < FIRST_YEAR or as_of > today:
                raise ValueError
        except ValueError:
            problems["as_of"] = f"a day as YYYY-MM-DD, from {FIRST_YEAR} up to today ({today.isoformat()})"
            as_of = today
    days = DEFAULT_DAYS
    if params.get("days"):
        try:
            days = int(params["days"])
            if not MIN_DAYS <= days <= MAX_DAYS:
                raise ValueError
        except ValueError:
            problems["days"] = f"a whole number of days from {MIN_DAYS} to {MAX_DAYS}"
            days = DEFAULT_DAYS
    measure = params.get("measure") or "churn"
    if measure not in analytics.MEASURES:
        problems["measure"] = f"one of {', '.join(analytics.MEASURES)}"
        measure = "churn"
    new_days = analytics.NEW_TUTOR_DAYS[0]
    if params.get("new_days"):
        choices = analytics.NEW_TUTOR_DAYS
        if params["new_days"] in {str(c) for c in choices}:
            new_days = int(params["new_days"])
        else:
            problems["new_days"] = f"one of {', '.join(str(c) for c in choices)}"
    subject = (params.get("subject") or "").strip() or None
    if subject and (len(subject) > 80 or any(ord(c) < 32 for c in subject)):
        problems["subject"] = "a subject from the list"
        subject = None
    return Filters(as_of=as_of, days=days, subject=subject, measure=measure, new_days=new_days), problems


# --- the figures, cached per filter set and data version --------------------------------------------------

_cache: OrderedDict[tuple, tuple[float, analytics.AnalyticsReport]] = OrderedDict()
_cache_lock = threading.Lock()


def _compute(db: Session, settings: Settings, filters: Filters, now: datetime) -> analytics.AnalyticsReport:
    thresholds = analytics.Thresholds.from_rules(active_scoring_rules(settings.rules_dir).spec)
    # The impact window and threshold live in the active rules (their `effectiveness` section), as for the API.
    window = settings_from_rules(active_intervention_rules(settings.rules_dir))
    return analytics.report(db, period=analytics.Period.ending(filters.as_of, filters.days, now=now),
                            thresholds=thresholds, effectiveness_window=window, subject=filters.subject,
                            new_days=filters.new_days)


def report_for(db: Session, settings: Settings, filters: Filters) -> analytics.AnalyticsReport:
    now = utcnow()
    key = (str(db.get_bind().url), filters.as_of, filters.days, filters.subject, filters.new_days,
           change_token(db, now=now))
    with _cache_lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            _cache.move_to_end(key)
            return hit[1]
    found = _compute(db, settings, filters, now)
    with _cache_lock:
        _cache[key] = (time.monotonic(), found)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return found


def _checked(db: Session, settings: Settings, params: dict[str, str], *, strict: bool
             ) -> tuple[Filters, dict[str, str], analytics.AnalyticsReport]:
    """Filters, problems and figures; an unknown subject is found only once the subjects are known."""
    filters, problems = parse_filters(params, utcnow().date())
    if strict and problems:
        raise InputError([field_error(["query", k], v, "value_error") for k, v in problems.items()])
    found = report_for(db, settings, filters)
    if filters.subject and filters.subject not in found.subjects:
        if strict:
            raise InputError([field_error(["query", "subject"], "a subject taught or listed by a tutor",
                                          "value_error")])
        problems["subject"] = "a subject from the list"
        filters = Filters(filters.as_of, filters.days, None, filters.measure, filters.new_days)
        found = report_for(db, settings, filters)
    return filters, problems, found


# --- presentation helpers ----------------------------------------------------------------------------------

def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def heat_class(value: float | None) -> str:
    if value is None:
        return "heat-none"
    return f"heat-{sum(value >= band for band in HEAT_BANDS)}"


def _bar_chart(labels: list[str], series: dict[str, list[float | None]], *, percent: bool = True) -> dict[str, Any]:
    """A Chart.js bar configuration (static/charts.js draws it); the page shows the same figures in a table."""
    colours = ("#1f4fb8", "#c25e00", "#0b6b2f", "#6a1b9a")
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": [
            {"label": name, "data": [None if v is None else round(v * 100 if percent else v, 1) for v in values],
             "backgroundColor": colours[k % len(colours)]}
            for k, (name, values) in enumerate(series.items())]},
        "options": {"responsive": True, "scales": {"y": {"beginAtZero": True,
                                                         "title": {"display": percent, "text": "%"}}}},
    }


def _charts(found: analytics.AnalyticsReport, by_type: list) -> dict[str, dict[str, Any]]:
    tenure, split = found.tenure, found.new_vs_tenured
    return {
        "tenure": _bar_chart([c.label for c in tenure], {"Churn rate": [c.churn_rate for c in tenure],
                                                         "At-risk share": [c.at_risk_share for c in tenure]}),
        "cohorts": _bar_chart(["Churn rate", "At-risk share", "No-show rate", "First-session success"], {
            c.label: [c.churn_rate, c.at_risk_share, c.tally.no_show_rate, c.tally.first_session_success]
            for c in split}),
        "effectiveness": _bar_chart([analytics_export.type_label(r.intervention_type) for r in by_type], {
            "Acceptance": [r.acceptance_rate for r in by_type], "Completion": [r.completion_rate for r in by_type],
            "Impact": [r.impact_rate for r in by_type]}),
    }


@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(request: Request, db: DbDep, settings: SettingsDep, _actor: StaffActor) -> Response:
    filters, problems, found = _checked(db, settings, dict(request.query_params), strict=False)
    by_type = analytics_export.effectiveness_by_type(found.effectiveness)
    context = {
        "active": "analytics", "filters": filters, "problems": problems, "report": found, "by_type": by_type,
        "charts": _charts(found, by_type), "weekdays": analytics.WEEKDAYS, "measures": analytics.MEASURES,
        "new_choices": analytics.NEW_TUTOR_DAYS, "min_days": MIN_DAYS, "max_days": MAX_DAYS,
        "today": utcnow().date(), "pct": pct, "heat_class": heat_class, "bands": HEAT_BANDS,
        "type_label": analytics_export.type_label, "query": filters.query(),
    }
    return templates.TemplateResponse(request, "analytics.html", context)


@router.get("/analytics.csv")
def analytics_csv(request: Request, db: DbDep, settings: SettingsDep, _actor: StaffActor) -> Response:
    filters, _problems, found = _checked(db, settings, dict(request.query_params), strict=True)
    return csv_response(analytics_export.csv_rows(found, filters.measure), stem="analytics", day=filters.as_of)


@router.get("/analytics.pdf")
def analytics_pdf(request: Request, db: DbDep, settings: SettingsDep, _actor: StaffActor) -> Response:
    filters, _problems, found = _checked(db, settings, dict(request.query_params), strict=True)
    title, subtitle, blocks = analytics_export.pdf_blocks(found, filters.measure)
    return pdf.pdf_response(pdf.build(title, blocks, subtitle=subtitle), stem="analytics", day=filters.as_of)
