"""Issue 7 acceptance: tutor API responses and pages contain no churn score, risk level, student name or student id.

The routes come from the app's route table (every route whose Policy lets a tutor in), so a tutor-facing route
added later is searched too. The world behind them is a tutor the product rates at critical churn risk, taught
students with distinctive names (tests/integration/auth_helpers.py), so the words are there to leak.
"""
from __future__ import annotations

import re

from sqlalchemy.engine import Engine

from api.policy import policy_of
from core.config import Settings
from domain.feedback import links
from tests.integration.auth_helpers import World, account, api_client, bearer, build_app, routes, seed_world

# A body for the tutor-callable routes that take one; any other gets {} (its 422 is searched like the rest).
BODIES = {"/api/v1/me/notifications/{message_id}/respond": {"response": "Thanks, will do."},
          "/api/v1/auth/logout": {}}


def tutor_routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    found = []
    for route in routes(app):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue  # mounts: static files and the OpenAPI document, not data
        if any("tutor" in p.roles for p in policy_of(dependant.dependencies)):
            found += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def _fill(path: str, w: World, tutor_id: str) -> str:
    values = {"tutor_id": tutor_id, "message_id": w.message_id, "token": links.sign("a46_1")[0]}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def _leaks(text: str, w: World) -> list[str]:
    raw = text.lower()
    return [needle for needle in w.forbidden() if needle in raw]


async def test_no_tutor_route_or_page_shows_risk_or_students(settings: Settings, engine: Engine) -> None:
    w = seed_world(engine)
    app = build_app(settings)
    user_id = account(engine, "tutor", user_id="u_priv_tutor", tutor_id=w.tutor_a, name="Emily Tran")
    walked = tutor_routes(app)
    paths = {p for _, p in walked}
    # The walk covers the tutor's own-data API and the pages a tutor may open.
    assert {"/api/v1/me/tutor/summary", "/api/v1/me/tutor/sessions", "/api/v1/me/tutor/feedback",
            "/api/v1/me/tutor/tiers", "/api/v1/me/notifications"} <= paths
    assert {"/portal", "/portal/feedback", "/portal/resources"} <= paths  # the tutor portal's pages
    leaks: dict[str, list[str]] = {}
    async with api_client(app) as client:
        for method, path in walked:
            url = _fill(path, w, w.tutor_a)
            # A fresh token per call: the walk includes logout, which revokes the one it was called with.
            response = await client.request(method, url, headers=bearer(engine, user_id),
                                            json=BODIES.get(path, {}) if method != "GET" else None)
            assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]}"
            if method == "GET" and "{" not in path.replace("{tutor_id}", ""):
                assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text[:200]}"
            found = _leaks(response.text, w)
            if found:
                leaks[f"{method} {path}"] = found
        if any(p == "/account" for p in paths):
            page = await client.get("/account", headers=bearer(engine, user_id))
            assert page.status_code == 200 and not _leaks(page.text, w)
    assert not leaks, f"tutor-visible responses leak: {leaks}"


async def test_tutor_cannot_reach_another_tutors_record(settings: Settings, engine: Engine) -> None:
    w = seed_world(engine)
    app = build_app(settings)
    headers = bearer(engine, account(engine, "tutor", user_id="u_priv_tutor", tutor_id=w.tutor_a))
    async with api_client(app) as client:
        for method, path in tutor_routes(app):
            if "{tutor_id}" not in path:
                continue
            response = await client.request(method, _fill(path, w, w.tutor_b), headers=headers)
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
            assert "TUTOR-B-MARKER" not in response.text and "Chemistry" not in response.text


async def test_the_walk_finds_a_planted_leak(settings: Settings, engine: Engine) -> None:
    """The search is not vacuous: a tutor route that returns a student's name or a risk level is caught."""
    from fastapi import Depends

    from api.policy import TUTOR_SELF

    w = seed_world(engine)
    app = build_app(settings)

    @app.get("/api/v1/me/leaky", dependencies=[Depends(TUTOR_SELF)])
    def leaky() -> dict:
        return {"student": "Quentin", "level": "Critical risk"}

    assert ("GET", "/api/v1/me/leaky") in tutor_routes(app)
    headers = bearer(engine, account(engine, "tutor", user_id="u_priv_tutor", tutor_id=w.tutor_a))
    async with api_client(app) as client:
        response = await client.get("/api/v1/me/leaky", headers=headers)
    assert sorted(_leaks(response.text, w)) == ["quentin", "risk"]
