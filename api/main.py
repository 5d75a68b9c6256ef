"""The FastAPI application: JSON API under /api, server-rendered pages at the root."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from api.openapi import build_openapi
from api.policy import PUBLIC
from core.config import Settings, get_settings
from core.db import get_engine
from core.errors import InputError

log = logging.getLogger(__name__)
WEB_STATIC = Path(__file__).resolve().parent.parent / "web" / "static"


@asynccontextmanager
async def lifespan(app: FastAPI):
    # Temporal is connected lazily (api.deps.get_temporal) so the API starts, and serves, without it.
    yield
    app.state.temporal = None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="TutorPulse",
        version="0.1.0",
        description="Tutor performance evaluation and retention: ingestion, metrics, churn risk, interventions.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = get_engine(settings.database_url)
    app.state.temporal = None
    app.state.temporal_lock = asyncio.Lock()

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": exc.errors})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default includes the offending input; student free text must not echo back into logs.
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    # Swagger UI from the swagger-ui-bundle wheel: the machines are offline, no CDN.
    app.mount("/api/docs-static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/api/docs", include_in_schema=False, dependencies=[Depends(PUBLIC)])
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="TutorPulse API",
            swagger_js_url="/api/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs-static/swagger-ui.css",
            swagger_favicon_url="/api/docs-static/favicon-32x32.png",
        )

    from api.ratelimit import install_rate_limiter
    from api.routes import audit as audit_api
    from api.routes import auth, feedback_links, health, ingest, interventions, me, notifications, queue, tutors
    from api.routes import users as users_api
    from api.security_headers import install_security_headers
    from web import admin_views, auth_views, sso_views, views
    from web.errors import install_page_errors

    install_rate_limiter(app, settings)
    install_security_headers(app)
    install_page_errors(app)
    app.include_router(health.router)
    app.include_router(auth.router, prefix="/api/v1")
    app.include_router(auth_views.router)
    app.include_router(sso_views.router)  # OpenID Connect sign-in, when OIDC_ISSUER is set
    app.include_router(ingest.router, prefix="/api/v1")
    app.include_router(interventions.router, prefix="/api/v1")
    app.include_router(queue.router, prefix="/api/v1")
    app.include_router(notifications.router, prefix="/api/v1")
    app.include_router(tutors.router, prefix="/api/v1")
    app.include_router(me.router, prefix="/api/v1")  # a tutor's or student's own records
    app.include_router(feedback_links.router, prefix="/api/v1")  # the student's signed feedback link
    app.include_router(audit_api.router, prefix="/api/v1")  # admin: search the audit log
    app.include_router(users_api.router, prefix="/api/v1")  # admin: accounts
    app.include_router(admin_views.router)
    from api.routes import first_sessions  # pre-session alerts (first-session model)
    app.include_router(first_sessions.router, prefix="/api/v1")
    from api.routes import rules as rules_api  # rule administration: JSON API and its pages
    from web import rules_views
    app.include_router(rules_api.router, prefix="/api/v1")
    app.include_router(rules_views.router)
    WEB_STATIC.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=WEB_STATIC), name="static")
    from web import portal_views  # the tutor portal: tutors' own pages
    app.include_router(portal_views.router)
    from web import profile_views  # the tutor profile deep dive (staff)
    app.include_router(profile_views.router)
    from web import feedback_views  # the student's feedback page (a signed link, no sign-in)
    app.include_router(feedback_views.router)
    from web import analytics_views  # Analytics & Reporting, its CSV and PDF
    app.include_router(analytics_views.router)
    app.include_router(views.router)
    app.openapi = lambda: build_openapi(app, ingest.BODY_MODELS)
    return app

