"""Who may call what: the one authorisation layer. Every route declares a Policy as a dependency; a route without
one fails tests/integration/test_access_matrix.py, which walks the app's route table.

A Policy authenticates (api.actor), checks the role, the object-level rule ("a tutor reads only their own"),
the CSRF token of cookie-authenticated writes, and writes the audit row for routes over student or risk data.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.actor import CSRF_FIELD, CSRF_HEADER, Actor, SignInRequired, authenticate, client_address, oauth2_scheme
from core.db import session_scope
from domain.audit import service as audit_service
from domain.auth import service as auth_service
from domain.users.models import Role

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
STAFF_ROLES = frozenset({Role.ops_manager, Role.people_ops, Role.admin})


class Policy:
    """A FastAPI dependency returning the Actor (None only for a public route called anonymously).

    ``own`` maps a role to the path parameter that must name that caller's own record: {"tutor": "tutor_id"}
    lets a tutor through only for their own tutor id (another id answers 404, as if it did not exist).
    ``audit`` names the data the route reads or writes ("student_data", "tutor_risk"): each call leaves a row.
    """

    def __init__(self, *roles: str, public: bool = False, own: Mapping[str, str] | None = None,
                 audit: str | None = None, name: str = ""):
        self.roles = frozenset(str(r) for r in roles)
        self.public, self.own, self.audit, self.name = public, dict(own or {}), audit, name
        unknown = (self.roles | set(self.own)) - {r.value for r in Role}
        if unknown:
            raise ValueError(f"unknown roles in policy {name}: {sorted(unknown)}")

    def __repr__(self) -> str:
        return f"Policy({self.name or ','.join(sorted(self.roles)) or 'public'})"

    # The bearer parameter only documents the scheme in the OpenAPI schema (Swagger's Authorize button,
    # schemathesis); api.actor reads the header itself so cookie sign-in works on the same routes.
    async def __call__(self, request: Request, _bearer: Annotated[str | None, Depends(oauth2_scheme)] = None
                       ) -> Actor | None:
        actor = await run_in_threadpool(self._authenticate, request)
        request.state.actor = actor  # the page templates show who is signed in (web.templating)
        if actor is None:
            if self.public:
                return None
            raise SignInRequired("Sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token).")
        if not self.public and actor.role not in self.roles:
            raise HTTPException(status_code=403, detail=f"The {actor.role} role may not {request.method} "
                                                        f"{request.url.path}.")
        field = self.own.get(actor.role)
        if field is not None and request.path_params.get(field) != getattr(actor, field, None):
            raise HTTPException(status_code=404, detail=f"No {field.removesuffix('_id')} "
                                                        f"{request.path_params.get(field)} for you.")
        if actor.via == auth_service.SESSION and request.method not in SAFE_METHODS:
            await _check_csrf(request, actor)
        if self.audit:
            await run_in_threadpool(self._record, request, actor)
        return actor

    @staticmethod
    def _authenticate(request: Request) -> Actor | None:
        # Its own short transaction: the route's session (if any) is not opened yet when dependencies resolve.
        with session_scope(request.app.state.engine) as db:
            return authenticate(db, request)

    def _record(self, request: Request, actor: Actor) -> None:
        with session_scope(request.app.state.engine) as db:
            audit_service.record(
                db, actor=actor.user_id, action="read" if request.method in SAFE_METHODS else "write",
                resource_type=self.audit or "", resource_id=_resource_id(request.path_params),
                source=client_address(request),
                details={"method": request.method, "path": request.url.path, "role": actor.role,
                         "query": sorted(request.query_params.keys())})


def _resource_id(params: Mapping[str, str]) -> str | None:
    return "/".join(f"{k}={v}" for k, v in params.items())[:160] or None


async def _check_csrf(request: Request, actor: Actor) -> None:
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it: the route's Form() parameters still see the body
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not auth_service.csrf_ok(actor.session_hash or "", presented):
        raise HTTPException(status_code=403, detail="The form's CSRF token is missing or stale: reload the page "
                                                    "and try again.")


def policy_of(dependencies: Iterable) -> list[Policy]:  # noqa: ANN001
    """Every Policy in a route's dependency tree (the access-matrix test and the docs read routes with this)."""
    found = []
    for dep in dependencies:
        if isinstance(dep.call, Policy):
            found.append(dep.call)
        found.extend(policy_of(dep.dependencies))
    return found


# The product's policies. Routes use these, so a change of who may do what is one line here.
PUBLIC = Policy(public=True, name="public")
STAFF = Policy(*STAFF_ROLES, name="staff", audit="tutor_risk")
STAFF_PLAIN = Policy(*STAFF_ROLES, name="staff (no risk data)")
MANAGERS = Policy(Role.ops_manager, Role.admin, name="managers", audit="tutor_risk")
ADMIN = Policy(Role.admin, name="admin")
INGEST = Policy(Role.service, Role.admin, name="ingestion", audit="student_data")
# Scoring an upcoming first session: the booking system (a service account) or staff.
BOOKING = Policy(Role.service, *STAFF_ROLES, name="booking", audit="tutor_risk")
TUTOR_SELF = Policy(Role.tutor, name="tutor (self)", audit="student_data")
STUDENT_SELF = Policy(Role.student, name="student (self)", audit="student_data")
SELF = Policy(*(r.value for r in Role), name="any account")

PublicActor = Annotated[Actor | None, Depends(PUBLIC)]
StaffActor = Annotated[Actor, Depends(STAFF)]
StaffPlainActor = Annotated[Actor, Depends(STAFF_PLAIN)]
AdminActor = Annotated[Actor, Depends(ADMIN)]
IngestActor = Annotated[Actor, Depends(INGEST)]
TutorActor = Annotated[Actor, Depends(TUTOR_SELF)]
StudentActor = Annotated[Actor, Depends(STUDENT_SELF)]
AnyActor = Annotated[Actor, Depends(SELF)]
