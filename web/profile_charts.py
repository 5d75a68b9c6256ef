"""Chart.js configurations of the tutor profile's drill-down charts (drawn by static/charts.js).

Each chart is the same weekly series the page's table lists, so the figures behind every line are on the page as
text too. Colours are the page's own (app.css), each at least 3:1 against white; thresholds are dashed lines
labelled in the legend, so a reader who cannot tell the colours apart still tells the lines apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.dashboard.profile import WeekPoint
from rules.scoring import Thresholds

ACCENT, BAD, WARN, MUTED = "#1f4fb8", "#a3161a", "#a35200", "#4f5864"


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    description: str  # the canvas's accessible name: what it shows; the table beside it has the figures
    config: dict[str, Any]


def _label(week: WeekPoint) -> str:
    return f"{week.end:%d %b}"


def _threshold(label: str, value: float, n: int) -> dict[str, Any]:
    return {"type": "line", "label": label, "data": [value] * n, "borderColor": MUTED, "borderDash": [6, 4],
            "borderWidth": 2, "pointRadius": 0, "fill": False}


def _options(y: dict[str, Any]) -> dict[str, Any]:
    return {"responsive": True, "plugins": {"legend": {"position": "bottom"}},
            "scales": {"x": {"title": {"display": True, "text": "Week ending"}}, "y": y}}


def charts(weeks: list[WeekPoint], thresholds: Thresholds) -> list[Chart]:
    if not weeks:
        return []
    labels = [_label(w) for w in weeks]
    n = len(weeks)
    rating = {"type": "line", "data": {"labels": labels, "datasets": [
        {"label": "Average rating (week)", "data": [None if w.avg_rating is None else round(w.avg_rating, 2)
                                                     for w in weeks],
         "borderColor": ACCENT, "backgroundColor": ACCENT, "borderWidth": 3, "pointRadius": 4, "spanGaps": False},
        _threshold(f"Threshold {thresholds.avg_rating_min:g}", thresholds.avg_rating_min, n),
    ]}, "options": _options({"min": 1, "max": 5, "title": {"display": True, "text": "Rating (1-5)"}})}
    sessions = {"type": "bar", "data": {"labels": labels, "datasets": [
        {"label": "Completed", "data": [w.sessions_completed for w in weeks], "backgroundColor": ACCENT},
        {"label": "Rescheduled by the tutor", "data": [w.reschedules for w in weeks], "backgroundColor": WARN},
        {"label": "No-shows", "data": [w.no_shows for w in weeks], "backgroundColor": BAD},
    ]}, "options": _options({"beginAtZero": True, "ticks": {"precision": 0},
                             "title": {"display": True, "text": "Sessions"}})}
    reschedules = {"type": "line", "data": {"labels": labels, "datasets": [
        {"label": "Reschedule rate (%)", "data": [None if w.reschedule_rate is None else round(w.reschedule_rate * 100, 1)
                                                  for w in weeks],
         "borderColor": WARN, "backgroundColor": WARN, "borderWidth": 3, "pointRadius": 4, "spanGaps": False},
        _threshold(f"Threshold {thresholds.reschedule_rate_max:.0%}", round(thresholds.reschedule_rate_max * 100, 1), n),
    ]}, "options": _options({"beginAtZero": True, "suggestedMax": 30, "title": {"display": True, "text": "% of sessions"}})}
    return [
        Chart("rating", "Average rating", f"Line chart of the weekly average rating over {n} weeks, with the "
              f"{thresholds.avg_rating_min:g} threshold; the figures are in the table below.", rating),
        Chart("sessions", "Sessions", f"Bar chart of completed, rescheduled and no-show sessions per week over {n} "
              "weeks; the figures are in the table below.", sessions),
        Chart("reschedules", "Reschedule rate", f"Line chart of the weekly reschedule rate over {n} weeks, with the "
              f"{thresholds.reschedule_rate_max:.0%} threshold; the figures are in the table below.", reschedules),
    ]
