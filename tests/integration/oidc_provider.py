"""A small, real OpenID Connect provider for the SSO tests, served by uvicorn on a free loopback port.

It does what a provider must for the authorization-code flow with PKCE: a discovery document, a JWKS with an RSA
key made by `cryptography`, /authorize that redirects back with a single-use code (for the configured test user,
no login form), and /token that authenticates the client (HTTP Basic), checks the redirect URI and the PKCE
verifier against the S256 challenge, and returns an RS256 id token. The attributes under "misbehaviour" make it
issue the bad tokens the tests expect TutorPulse to refuse.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route


class OIDCProvider:
    def __init__(self, client_id: str, client_secret: str):
        self.client_id, self.client_secret = client_id, client_secret
        self.issuer = ""  # set by serve()
        self._new_key()
        self.reset()

    def _new_key(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"k-{secrets.token_hex(4)}"

    def reset(self) -> None:
        self.user: dict[str, Any] = {"sub": "idp-user-1", "email": "nobody@example.test", "email_verified": True}
        self.codes: dict[str, dict[str, str]] = {}
        self.issued: list[str] = []  # every code and id token handed out (the tests check none reaches a log)
        self.token_requests = 0
        # misbehaviour
        self.audience: str | None = None
        self.nonce: str | None = None
        self.expires_in = 300
        self.tamper_signature = False

    def rotate_key(self) -> None:
        self._new_key()

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    # --- endpoints ---

    async def discovery(self, _request: Request) -> Response:
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "email", "profile"],
        })

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse({"keys": [self.jwk()]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        problems = [name for name, ok in (
            ("response_type", q.get("response_type") == "code"), ("client_id", q.get("client_id") == self.client_id),
            ("redirect_uri", bool(q.get("redirect_uri"))), ("state", bool(q.get("state"))),
            ("nonce", bool(q.get("nonce"))), ("scope", "openid" in q.get("scope", "").split()),
            ("code_challenge", len(q.get("code_challenge", "")) == 43),
            ("code_challenge_method", q.get("code_challenge_method") == "S256")) if not ok]
        if problems:
            return PlainTextResponse(f"bad authorization request: {', '.join(problems)}", status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "nonce": q["nonce"], "challenge": q["code_challenge"]}
        self.issued.append(code)
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}",
                                status_code=302)

    def _client_ok(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        return unquote(client_id) == self.client_id and unquote(secret) == self.client_secret

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        if not self._client_ok(request):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = await request.form()
        grant = self.codes.pop(str(form.get("code")), None)  # single use
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri differs"}, 400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}, 400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience or self.client_id, "iat": now,
                  "exp": now + self.expires_in, "nonce": self.nonce or grant["nonce"], **self.user}
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        if self.tamper_signature:
            head, body, signature = id_token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
            raw[0] ^= 1  # one flipped bit: a well-formed token whose signature no longer matches
            id_token = f"{head}.{body}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
        self.issued.append(id_token)
        return JSONResponse({"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                             "expires_in": 300, "id_token": id_token})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery), Route("/jwks", self.jwks),
            Route("/authorize", self.authorize), Route("/token", self.token, methods=["POST"]),
        ])


@contextmanager
def serve(provider: OIDCProvider) -> Iterator[str]:
    """Runs the provider on 127.0.0.1 in a background thread; yields its issuer URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    provider.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="oidc-provider")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test OIDC provider did not start")
        time.sleep(0.02)
    try:
        yield provider.issuer
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
