"""How refusals look: JSON under /api (what API clients parse), pages and redirects to sign-in everywhere else."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.actor import SESSION_COOKIE, SignInRequired
from web.templating import templates

# Statuses a person can meet on a page and should get a page for; others keep FastAPI's JSON.
PAGE_STATUSES = {403, 404, 429}


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def is_page(path: str) -> bool:
    return not is_api(path) and path != "/static" and not path.startswith("/static/")


def sign_in_redirect(request: Request) -> Response:
    # After sign-in, a GET comes back where it was; a refused form post cannot be replayed, so it goes to the
    # role's home instead. /login itself keeps its own query (its next) and must not nest another next.
    path = request.url.path
    here = path + (f"?{request.url.query}" if request.url.query else "")
    if path == "/login":
        target = here
    elif request.method in ("GET", "HEAD"):
        target = "/login?" + urlencode({"next": here}, safe="/", quote_via=quote)
    else:
        target = "/login"
    response = RedirectResponse(target, status_code=303)
    if SESSION_COOKIE in request.cookies:
        # A revoked or expired session cookie would otherwise be presented again on /login and refused again.
        settings = request.app.state.settings
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure)
    return response


def install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        if is_api(request.url.path) or not is_page(request.url.path):
            return JSONResponse(status_code=401, content={"detail": exc.message},
                                headers={"WWW-Authenticate": "Bearer"})
        return sign_in_redirect(request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code not in PAGE_STATUSES or not is_page(request.url.path):
            return await http_exception_handler(request, exc)
        message = exc.detail if isinstance(exc.detail, str) else "This page is not available to you."
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": message},
                                          status_code=exc.status_code, headers=exc.headers)
