"""Security headers on every HTTP response, as a pure ASGI middleware (no body buffering, streams untouched)."""
from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
              "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
# FastAPI's Swagger page boots SwaggerUIBundle from an inline <script>, and the bundle renders inline styles;
# only that page gets 'unsafe-inline', everything it loads still comes from our own origin (no CDN).
SWAGGER_PATH = "/api/docs"
SWAGGER_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
HSTS = "max-age=31536000; includeSubDomains"

COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = SWAGGER_CSP if scope["path"] == SWAGGER_PATH else STRICT_CSP
        extra = [*COMMON_HEADERS, (b"content-security-policy", csp.encode("latin-1"))]
        # HSTS over plain http is ignored by browsers and would be wrong for the local demo. Behind a TLS-ending
        # proxy the scheme is https only when uvicorn trusts the proxy's headers (--proxy-headers).
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode("latin-1")))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                # A route that set one of these itself knows better; ours only fill the gaps.
                headers.extend((name, value) for name, value in extra if name.lower() not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    app.add_middleware(SecurityHeadersMiddleware)
