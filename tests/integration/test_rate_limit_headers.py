"""Rate limits (api.ratelimit, on the `limits` package) and security headers (api.security_headers), over real ASGI."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI

from api.main import create_app
from api.ratelimit import install_rate_limiter, rate_limited
from api.security_headers import install_security_headers
from core.config import Settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


def _limited_app(tmp_path: Path, login: str = "3/minute", feedback: str = "2/minute") -> FastAPI:
    settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'unused.db'}",
                        login_rate_limit=login, feedback_rate_limit=feedback)
    app = FastAPI()
    app.state.settings = settings
    install_rate_limiter(app, settings)
    install_security_headers(app)

    @app.post("/login", dependencies=[Depends(rate_limited("login", "login_rate_limit"))])
    def login() -> dict:
        return {"ok": True}

    @app.post("/feedback", dependencies=[Depends(rate_limited("feedback", "feedback_rate_limit"))])
    def feedback() -> dict:
        return {"ok": True}

    return app


def _client(app: FastAPI, host: str = "10.0.0.1", base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url=base_url)


def _assert_strict_headers(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp


async def test_login_limit_refuses_with_retry_after_per_address_and_scope(tmp_path: Path) -> None:
    app = _limited_app(tmp_path)
    async with _client(app) as first, _client(app, host="1.2.3.4") as other:
        for _ in range(3):
            assert (await first.post("/login")).status_code == 200
        refused = await first.post("/login")
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        detail = refused.json()["detail"]
        assert "login" in detail and "3/minute" in detail and f"{retry_after} seconds" in detail
        _assert_strict_headers(refused)  # the refusal is a response like any other
        # Another address has its own budget, and so does another scope from the same address.
        assert (await other.post("/login")).status_code == 200
        assert (await first.post("/feedback")).status_code == 200
        # Refused attempts do not count as slots: still refused, not pushed further out than a minute.
        again = await first.post("/login")
        assert again.status_code == 429 and int(again.headers["retry-after"]) <= 60


async def test_retry_after_is_when_the_window_frees(tmp_path: Path) -> None:
    app = _limited_app(tmp_path, feedback="2/second")
    async with _client(app) as client:
        assert [(await client.post("/feedback")).status_code for _ in range(3)] == [200, 200, 429]
        refused = await client.post("/feedback")
        assert refused.headers["retry-after"] == "1"
        await asyncio.sleep(1.1)
        assert (await client.post("/feedback")).status_code == 200


async def test_limit_is_read_from_the_settings_on_the_app(tmp_path: Path) -> None:
    app = _limited_app(tmp_path, login="1/minute")
    async with _client(app) as client:
        assert (await client.post("/login")).status_code == 200
        assert (await client.post("/login")).status_code == 429
        app.state.settings = app.state.settings.model_copy(update={"login_rate_limit": "5/minute"})
        assert (await client.post("/login")).status_code == 200


def test_bad_limit_string_fails_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="feedback_rate_limit"):  # the settings refuse it on load
        Settings(var_dir=tmp_path, feedback_rate_limit="lots")
    # A copy made without validation (model_copy) is still refused when the limiter is installed.
    settings = Settings(var_dir=tmp_path).model_copy(update={"feedback_rate_limit": "lots"})
    with pytest.raises(ValueError, match="feedback_rate_limit"):
        install_rate_limiter(FastAPI(), settings)
    with pytest.raises(ValueError, match="no_such_limit"):
        rate_limited("login", "no_such_limit")


async def test_security_headers_on_json_and_html_and_hsts_only_over_https(settings: Settings) -> None:
    app = create_app(settings)  # installs the headers itself
    async with _client(app) as client:
        health = await client.get("/api/health")
        assert health.status_code == 200 and health.headers["content-type"].startswith("application/json")
        _assert_strict_headers(health)
        assert "strict-transport-security" not in health.headers

        page = await client.get("/login")  # a page anyone may open
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        _assert_strict_headers(page)
        # Scripts load from /static; the strict CSP would block an inline one (a <script> without src).
        assert not re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text.lower())

        missing = await client.get("/api/v1/no-such-route")
        assert missing.status_code == 404
        _assert_strict_headers(missing)

        # Swagger's inline bootstrap script is allowed on that one page only, and the page indeed has one.
        docs = await client.get("/api/docs")
        assert docs.status_code == 200 and "<script>" in docs.text
        assert "script-src 'self' 'unsafe-inline'" in docs.headers["content-security-policy"]
        assert docs.headers["x-frame-options"] == "DENY"
        assert "'unsafe-inline'" not in (await client.get("/api/docs-static/swagger-ui.css")).headers[
            "content-security-policy"]

    async with _client(app, base_url="https://testserver") as secure:
        for path in ("/api/health", "/"):
            response = await secure.get(path)
            assert response.headers["strict-transport-security"].startswith("max-age=31536000")
            _assert_strict_headers(response)
