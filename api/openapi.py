"""The OpenAPI schema: FastAPI's, plus what the routes cannot say about themselves.

Two additions. The ingestion body models, which routes take as raw JSON, become components. And every operation
documents the refusals its Policy (api.policy) and rate limit (api.ratelimit) can give, read from the route
table rather than repeated in each route: 401 and 403, 404 where the policy has an object-level rule, 429 where
a rate limit applies, and 400 wherever there is a body (Starlette's answer to one it cannot decode). A client
generator (or schemathesis' status_code_conformance) then meets no status the schema did not announce.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.policy import policy_of
from api.ratelimit import rate_limited

REFUSAL = "Refusal"
REFUSAL_SCHEMA = {
    "title": REFUSAL, "type": "object", "required": ["detail"],
    "properties": {"detail": {"title": "Detail", "type": "string", "description": "Why, in words for a person"}},
}
NOT_SIGNED_IN = ("Not signed in: no bearer token, or an unknown, expired or revoked one "
                 "(get one from POST /api/v1/auth/token)")
BAD_CREDENTIALS = "Credentials were sent but are unknown, expired or revoked (none are needed here)"
NOT_ALLOWED = "Signed in, but this account's role may not call this operation"
NOT_YOURS = "Not found, or not this account's own record (another's answers as if it did not exist)"
TOO_MANY = "Too many requests from this address; the Retry-After header says when to try again"
UNPARSABLE = "The body could not be read as its content type (e.g. bytes that are not UTF-8 JSON)"


def build_openapi(app: FastAPI, body_models: Iterable[type[BaseModel]] = ()) -> dict[str, Any]:
    """The app's schema, built once and cached on ``app.openapi_schema``."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in body_models:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        components.setdefault(REFUSAL, REFUSAL_SCHEMA)
        for path, method, route in _api_routes(app):
            operation = schema.get("paths", {}).get(path, {}).get(method.lower())
            if operation is not None:
                _document_refusals(operation, route)
        app.openapi_schema = schema
    return app.openapi_schema


def _api_routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    # Since FastAPI 0.16x app.routes keeps included routers unflattened; iter_route_contexts gives each route with
    # its include prefix and the include-level dependencies (where a router-wide Policy would sit).
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in (flatten(app.routes) if flatten else app.routes):
        original = getattr(route, "original_route", route)
        if not isinstance(original, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            yield route.path_format, method, route


def refusals_for(route: Any) -> dict[int, str]:  # noqa: ANN401 - an APIRoute or a RouteContext around one
    """The statuses the route's Policy and rate limit can answer with, and why."""
    policies = policy_of(route.dependant.dependencies)
    public = bool(policies) and all(p.public for p in policies)
    found = {401: BAD_CREDENTIALS if public else NOT_SIGNED_IN}
    if not public:
        found[403] = NOT_ALLOWED
    if any(p.own for p in policies):
        found[404] = NOT_YOURS
    if any(_is_rate_limit(call) for call in _calls(route.dependant.dependencies)):
        found[429] = TOO_MANY
    return found


def _document_refusals(operation: dict[str, Any], route: Any) -> None:  # noqa: ANN401
    responses = operation.setdefault("responses", {})
    refusals = refusals_for(route)
    if "requestBody" in operation:
        # Starlette's answer to a body it cannot decode, before any validation: every route with a body can give it.
        refusals[400] = UNPARSABLE
    for status, description in sorted(refusals.items()):
        # A route's own wording (e.g. "Unknown intervention" for its 404) is more precise: kept, given a body.
        entry = responses.setdefault(str(status), {"description": description})
        entry.setdefault("content", {"application/json": {"schema": {"$ref": f"#/components/schemas/{REFUSAL}"}}})
        if status == 429:
            entry.setdefault("headers", {"Retry-After": {"description": "Seconds until a request is accepted again",
                                                         "schema": {"type": "integer"}}})


def _calls(dependencies: Iterable[Any]) -> Iterator[Any]:
    for dep in dependencies:
        yield dep.call
        yield from _calls(dep.dependencies)


def _is_rate_limit(call: Any) -> bool:  # noqa: ANN401
    # rate_limited() returns a fresh closure per route; its qualified name is how one is recognised.
    return (getattr(call, "__module__", None) == rate_limited.__module__
            and getattr(call, "__qualname__", "").startswith(f"{rate_limited.__qualname__}.<locals>."))

