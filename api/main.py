"""The FastAPI application: JSON API under /api, server-rendered pages at the root."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

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

    @app.get("/api/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="TutorPulse API",
            swagger_js_url="/api/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs-static/swagger-ui.css",
            swagger_favicon_url="/api/docs-static/favicon-32x32.png",
        )

    from api.routes import health, ingest, interventions, notifications, queue, tutors
    from web import views

    app.include_router(health.router)
    app.include_router(ingest.router, prefix="/api/v1")
    app.include_router(interventions.router, prefix="/api/v1")
    app.include_router(queue.router, prefix="/api/v1")
    app.include_router(notifications.router, prefix="/api/v1")
    app.include_router(tutors.router, prefix="/api/v1")
    from api.routes import first_sessions  # pre-session alerts (first-session model)
    app.include_router(first_sessions.router, prefix="/api/v1")
    from api.routes import rules as rules_api  # rule administration: JSON API and its pages
    from web import rules_views
    app.include_router(rules_api.router, prefix="/api/v1")
    app.include_router(rules_views.router)
    WEB_STATIC.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=WEB_STATIC), name="static")
    app.include_router(views.router)
    app.openapi = lambda: _openapi_with_bodies(app, ingest.BODY_MODELS)
    return app


def _openapi_with_bodies(app: FastAPI, models) -> dict:  # noqa: ANN001
    """Adds the ingestion body models, which routes take as raw JSON, to the schema's components."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
    return app.openapi_schema
