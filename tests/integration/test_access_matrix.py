"""Every route x every role (and anonymous) gets the status its Policy promises: the acceptance matrix of issue 7.

The matrix is generated from the app's route table, so a route added tomorrow is walked too: one without a
Policy fails here by name, and one with a path parameter this file cannot fill fails with "add a value for ...".
Expected, per call:
- anonymous on a non-public route: 401 under /api, a 303 to /login for a page;
- a signed-in role the policy does not name: 403;
- a role it names: neither 401 nor 403 and no 5xx (503 only where the route needs Temporal, which is down here);
  a GET with the seeded ids answers 200;
- a policy with an object-level rule ("own"): that role on another's record gets 404, on its own 200;
- a policy that audits (student data, tutor risk data): every call it lets in adds an audit row.
API calls carry a fresh bearer token each (a logout route revokes the one it is called with); pages a fresh
session cookie and, on form posts, the session's CSRF token. Everything runs in one test per database with the
mismatches collected, so one run shows the whole table.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.actor import CSRF_FIELD, SESSION_COOKIE
from api.deps import get_temporal
from api.main import create_app
from api.policy import Policy, policy_of
from core.migrate import upgrade
from tests.auth import bearer, page_session
from tests.integration.access_world import OTHERS, PATH_VALUES, ROLES, World, seed_world, world_settings
from web.auth_views import LOGIN_COOKIE, login_token

ANONYMOUS = "anonymous"
# Routes that are not FastAPI routes carry no Policy. Each is listed with why anyone may fetch it, and a URL the
# walk fetches anonymously to show it is indeed served.
PUBLIC_NON_API = {
    "/api/openapi.json": ("the API schema, no data", "/api/openapi.json"),
    "/api/docs-static": ("Swagger UI's static files", "/api/docs-static/swagger-ui.css"),
    "/static": ("the pages' CSS", "/static/app.css"),
}
# GET routes whose 200 needs more than a seeded database: the status they answer here instead, and why. Anything
# else (another status, or a route not listed) is still a mismatch.
NOT_200_HERE = {
    ("GET", "/login/sso"): (404, "single sign-on is not configured in these settings (test_oidc runs a provider)"),
    ("GET", "/login/sso/callback"): (404, "the same: no provider configured, nothing to come back from"),
}
PARAM = re.compile(r"{(\w+)(?::\w+)?}")
LINKS = {"tutor": "tutor_id", "student": "student_id"}  # the record an account of the role is linked to
SAFE = {"GET", "HEAD", "OPTIONS"}
ALERT = re.compile(r'role="alert">(.*?)<', re.S)  # the message on web/templates/error.html


@dataclass
class Mismatch:
    method: str
    path: str
    caller: str
    expected: str
    got: str

    def row(self) -> tuple[str, ...]:
        return self.method, self.path, self.caller, self.expected, self.got


@dataclass
class Route:
    method: str
    path: str  # the template, e.g. /api/v1/tutors/{tutor_id}/metrics
    policies: list[Policy]
    needs_temporal: bool

    @property
    def page(self) -> bool:
        return not (self.path == "/api" or self.path.startswith("/api/"))

    @property
    def public(self) -> bool:
        return all(p.public for p in self.policies)

    def allows(self, role: str) -> bool:
        return all(p.public or role in p.roles for p in self.policies)

    def own_params(self, role: str) -> set[str]:
        """Parameters naming the caller's own record: those the policy's object-level rule names, and, so that a
        policy which forgot its rule is caught, the caller's own link (a tutor's tutor_id) wherever it appears."""
        declared = {p.own[role] for p in self.policies if role in p.own}
        linked = {LINKS[role]} & set(PARAM.findall(self.path)) if role in LINKS else set()
        return declared | linked


def _calls(dependencies: list[Any]) -> Iterator[Any]:
    for dep in dependencies:
        yield dep.call
        yield from _calls(dep.dependencies)


def route_table(app: FastAPI) -> tuple[list[Route], list[Mismatch]]:
    """Every (method, path) of the app, and the mismatches found by reading the table alone."""
    routes, problems = [], []
    for ctx in fastapi.routing.iter_route_contexts(app.routes):
        original = getattr(ctx, "original_route", ctx)
        if not isinstance(original, APIRoute):
            path = ctx.path  # a mount's own prefix, not its /{path} pattern
            if path not in PUBLIC_NON_API:
                problems.append(Mismatch("*", path, "-", "an APIRoute with a Policy, or an entry in PUBLIC_NON_API",
                                         type(original).__name__))
            else:
                routes.append(Route("GET", path, [], needs_temporal=False))
            continue
        path = ctx.path_format
        policies = policy_of(ctx.dependant.dependencies)
        needs_temporal = any(call is get_temporal for call in _calls(ctx.dependant.dependencies))
        for method in sorted(ctx.methods or ()):
            if not policies:
                problems.append(Mismatch(method, path, "-", "a Policy dependency (api.policy)", "none"))
                continue
            routes.append(Route(method, path, policies, needs_temporal))
    # Reads first: the writes below may change the world (discard a draft, open a notification).
    routes.sort(key=lambda r: (r.method not in SAFE, r.path, r.method))
    return routes, problems


def fill(path: str, values: dict[str, str]) -> str:
    missing = [name for name in PARAM.findall(path) if name not in values]
    if missing:
        raise KeyError(missing[0])
    return PARAM.sub(lambda m: values[m.group(1)], path)


class Caller:
    """Sends one request as a role (or anonymously) with fresh credentials and nothing left over from before."""

    def __init__(self, client: TestClient, engine: Engine, users: dict[str, str]):
        self.client, self.engine, self.users = client, engine, users

    def send(self, route: Route, url: str, who: str, *, csrf: bool = True) -> Any:  # noqa: ANN401
        # A Set-Cookie from an earlier answer (tp_login, a deleted session) must not ride along.
        self.client.cookies.clear()
        headers: dict[str, str] = {}
        form: dict[str, str] = {}
        if who == ANONYMOUS:
            if route.page and route.method not in SAFE:
                # The sign-in form's own CSRF pair (web.auth_views), as GET /login hands it to a browser.
                nonce = secrets.token_urlsafe(16)
                headers["Cookie"] = f"{LOGIN_COOKIE}={nonce}"
                form[CSRF_FIELD] = login_token(nonce)
        elif route.page:
            cookie, token = page_session(self.engine, self.users[who])
            headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
            if csrf:
                form[CSRF_FIELD] = token
        else:
            headers.update(bearer(self.engine, self.users[who]))
        kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
        if route.method not in SAFE:
            if route.page:
                kwargs["data"] = form
            else:
                kwargs["json"] = {}  # an empty body: enough to pass the Policy, too little to change anything
        return self.client.request(route.method, url, **kwargs)


def expectation(route: Route, who: str, response: Any) -> str | None:  # noqa: ANN401
    """What was expected, when ``response`` is not it; None when it is."""
    status = response.status_code
    if who == ANONYMOUS and not route.public:
        if route.page:
            ok = status == 303 and response.headers.get("location", "").startswith("/login")
            return None if ok else "303 to /login"
        return None if status == 401 else "401"
    if who != ANONYMOUS and not route.allows(who):
        return None if status == 403 else "403"
    if status in (401, 403):
        return "allowed (not 401/403)"
    if status >= 500 and not (status == 503 and route.needs_temporal):
        return "no 5xx" + (" (503 only: Temporal is down)" if route.needs_temporal else "")
    if route.method == "GET" and status != 200:
        if (route.method, route.path) in NOT_200_HERE:
            wanted = NOT_200_HERE[route.method, route.path][0]
            return None if status == wanted else str(wanted)
        # The sign-in page sends a signed-in visitor on to their home page: a public page's redirect is its answer.
        if not (route.public and route.page and who != ANONYMOUS and status == 303):
            return "200"
    return None


def _got(response: Any) -> str:  # noqa: ANN401
    """The status and what explains it: the redirect target, the error page's message, or the body's start."""
    message = ALERT.search(response.text) if "html" in response.headers.get("content-type", "") else None
    detail = response.headers.get("location") or (message.group(1) if message else response.text[:100])
    return f"{response.status_code} {' '.join(detail.split())}"


def plan(app: FastAPI, values: dict[str, str] = PATH_VALUES) -> tuple[list[tuple[Route, str]], list[Mismatch]]:
    """Each route with its URL, and what is wrong with the route table before any call is made."""
    routes, mismatches = route_table(app)
    planned = []
    for route in routes:
        if not route.policies:  # an allowlisted non-API route: its sample URL
            planned.append((route, PUBLIC_NON_API[route.path][1]))
            continue
        try:
            planned.append((route, fill(route.path, values)))
        except KeyError as exc:
            mismatches.append(Mismatch(route.method, route.path, "-", f"add a value for {exc.args[0]} to "
                                       "access_world.PATH_VALUES", "unknown path parameter"))
    return planned, mismatches


def walk(app: FastAPI, client: TestClient, engine: Engine, world: World,
         only: str = "") -> tuple[list[Mismatch], int]:
    """Calls every route (those whose path starts with ``only``) as every caller; the mismatches and the count."""
    planned, mismatches = plan(app, world.path_values)
    caller = Caller(client, engine, world.users)
    calls = 0
    for route, url in planned:
        if not route.path.startswith(only):
            continue
        audited = [p.audit for p in route.policies if p.audit]
        for who in (ANONYMOUS, *ROLES):
            before = _audit_rows(engine)
            response = caller.send(route, url, who)
            calls += 1
            wanted = expectation(route, who, response)
            if wanted:
                mismatches.append(Mismatch(route.method, route.path, who, wanted, _got(response)))
            if who == ANONYMOUS or not route.allows(who):
                continue
            # Every call a policy lets into student or risk data leaves its audit row, naming the caller.
            if audited and _audit_rows(engine) <= before:
                mismatches.append(Mismatch(route.method, route.path, who, f"an audit row ({audited[0]})", "none"))
            for param in route.own_params(who):
                if param not in OTHERS:
                    mismatches.append(Mismatch(route.method, route.path, who, f"add another's {param} to "
                                               "access_world.OTHERS", "-"))
                    continue
                other = caller.send(route, fill(route.path, {**world.path_values, param: OTHERS[param]}), who)
                calls += 1
                if other.status_code != 404:
                    mismatches.append(Mismatch(route.method, route.path, f"{who} on {OTHERS[param]}",
                                               "404 (not their own)", _got(other)))
    return mismatches, calls


def _audit_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()


def table(mismatches: list[Mismatch]) -> str:
    rows = [("method", "path", "caller", "expected", "got"), *(m.row() for m in mismatches)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows)


def csrf_check(app: FastAPI, client: TestClient, engine: Engine, world: World) -> list[Mismatch]:
    """A cookie-signed form post without the session's CSRF token is refused; the same post with it is not."""
    routes, _ = route_table(app)
    logout = next(r for r in routes if r.path == "/logout" and r.method == "POST")
    caller = Caller(client, engine, world.users)
    found = []
    refused = caller.send(logout, "/logout", "tutor", csrf=False)
    if refused.status_code != 403:
        found.append(Mismatch("POST", "/logout", "tutor, no csrf_token", "403", _got(refused)))
    accepted = caller.send(logout, "/logout", "tutor")
    if accepted.status_code != 303 or accepted.headers.get("location") != "/login":
        found.append(Mismatch("POST", "/logout", "tutor, csrf_token", "303 to /login", _got(accepted)))
    return found


def test_every_route_answers_every_role_as_its_policy_says(db_url: str) -> None:
    settings = world_settings(db_url)
    app = create_app(settings)
    seeded = seed_world(app.state.engine, settings)
    # A handler's exception becomes the 500 a client would see, and is reported with the rest.
    with TestClient(app, raise_server_exceptions=False) as client:
        mismatches, calls = walk(app, client, app.state.engine, seeded)
        mismatches += csrf_check(app, client, app.state.engine, seeded)
    routes, _ = route_table(app)
    assert len(routes) > 40 and calls >= len(routes) * (len(ROLES) + 1)  # the table was walked, not skipped
    assert not mismatches, (f"{len(mismatches)} of {calls} calls did not answer as the policies say:\n"
                            + table(mismatches))


def test_the_table_check_catches_a_route_without_a_policy_or_an_unknown_parameter(tmp_path) -> None:  # noqa: ANN001
    """The walk's own guard is tested: a route with no Policy and one with an unfillable parameter are reported."""
    app = create_app(world_settings(f"sqlite:///{tmp_path / 'unused.db'}"))  # the route table only: no database
    assert plan(app)[1] == []

    @app.get("/api/v1/unguarded")
    def unguarded() -> dict:
        return {}

    @app.get("/api/v1/things/{thing_id}", dependencies=[fastapi.Depends(Policy("admin"))])
    def thing(thing_id: str) -> dict:
        return {"id": thing_id}

    app.mount("/files", StaticFiles(directory=tmp_path))
    reported = {(m.path, m.expected) for m in plan(app)[1]}
    assert reported == {
        ("/api/v1/unguarded", "a Policy dependency (api.policy)"),
        ("/api/v1/things/{thing_id}", "add a value for thing_id to access_world.PATH_VALUES"),
        ("/files", "an APIRoute with a Policy, or an entry in PUBLIC_NON_API"),
    }


def test_the_walk_catches_planted_holes(tmp_path) -> None:  # noqa: ANN001
    """Routes with a hole each: the walk reports every one, so a green matrix means the holes are not there."""
    url = f"sqlite:///{tmp_path / 'planted.db'}"
    upgrade(url)
    settings = world_settings(url)
    app = create_app(settings)
    seeded = seed_world(app.state.engine, settings)

    # A tutor may call it, but nothing checks the tutor id is their own.
    @app.get("/planted/api/tutors/{tutor_id}", dependencies=[fastapi.Depends(Policy("ops_manager", "tutor"))])
    def someone_elses(tutor_id: str) -> dict:
        return {"tutor_id": tutor_id}

    @app.get("/planted/api/crash", dependencies=[fastapi.Depends(Policy("admin"))])
    def crash() -> dict:
        raise RuntimeError("planted")

    with TestClient(app, raise_server_exceptions=False) as client:
        mismatches, _calls = walk(app, client, app.state.engine, seeded, only="/planted/")
    assert {(m.path, m.caller, m.expected) for m in mismatches} == {
        ("/planted/api/tutors/{tutor_id}", "tutor on tutor_2", "404 (not their own)"),
        ("/planted/api/crash", "admin", "no 5xx"),
    }, table(mismatches)
