"""The one Jinja environment of the server-rendered pages, with its filters and the signed-in account.

Every template sees ``me`` (the Actor the route's Policy resolved, or None), ``csrf_token`` (the token each
<form method="post"> carries; None for anonymous and bearer callers, whom the Policy does not CSRF-check) and
``nav`` (the pages this account's role may open, read from the same Policy objects the routes declare).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from api.actor import Actor
from api.policy import ADMIN, SELF, STAFF, STAFF_PLAIN, TUTOR_SELF, Policy
from domain.dashboard import service as dashboard_service
from domain.interventions.models import OPEN

# (key for aria-current, label, href, policy of the page it opens).
NAV: tuple[tuple[str, str, str, Policy], ...] = (
    ("home", "Home", "/", STAFF),
    ("queue", "Queue", "/queue", STAFF),
    ("analytics", "Analytics", "/analytics", STAFF),
    ("rules", "Rules", "/rules", ADMIN),
    ("users", "Users", "/admin/users", ADMIN),
    ("audit", "Audit log", "/admin/audit", ADMIN),
    ("portal", "My performance", "/portal", TUTOR_SELF),  # the tutor portal (web.portal_views)
    ("portal-feedback", "Feedback & growth", "/portal/feedback", TUTOR_SELF),
    ("portal-resources", "Resources", "/portal/resources", TUTOR_SELF),
    ("account", "Account", "/account", SELF),
    ("api", "API docs", "/api/docs", STAFF_PLAIN),  # open to anyone; only staff work with the API
)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600:.0f} hours"
    return f"{max(1, seconds // 60):.0f} min"


def due(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "no due date"
    return f"overdue by {_span(now - value)}" if value < now else f"due in {_span(value - now)}"


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) for a unified diff, so additions and removals can be told apart without colour too."""
    out = []
    for line in diff.splitlines():
        kind = ("meta" if line.startswith(("+++", "---")) else "hunk" if line.startswith("@@")
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx")
        out.append((kind, line))
    return out


def signed_in_actor(request: Request) -> Actor | None:
    # Set by api.policy.Policy before it decides; absent on requests no Policy saw (unknown paths, static).
    return getattr(request.state, "actor", None)


def nav_for(actor: Actor | None) -> list[tuple[str, str, str]]:
    if actor is None:
        return []
    return [(key, label, href) for key, label, href, policy in NAV if actor.role in policy.roles]


def _signed_in(request: Request) -> dict[str, Any]:
    me = signed_in_actor(request)
    return {"me": me, "csrf_token": me.csrf_token if me else None, "nav": nav_for(me)}


templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates", context_processors=[_signed_in])
templates.env.filters["words"] = dashboard_service.title_words
templates.env.filters["when"] = when
templates.env.globals["due"] = due
templates.env.globals["diff_lines"] = diff_lines
# The statuses a task is still open in, as the queries count them (domain/interventions/models.py).
templates.env.globals["open_statuses"] = tuple(status.value for status in OPEN)
