"""OpenID Connect sign-in: the authorization-code flow with PKCE against the issuer in ``settings.oidc_issuer``.

The protocol only (discovery, the authorization URL, the code exchange, id-token verification). Which account
a verified email opens, and the cookies that carry the flow, are web.sso_views' business.

The id token arrives over a direct TLS call to the token endpoint, yet it is still verified (signature against
the issuer's JWKS, iss, aud, exp, nonce): the nonce check binds it to this browser's flow, and verifying
keeps a compromised or misrouted token endpoint from vouching for an arbitrary email. Errors carry the HTTP
status the page should answer with and a message fit to show; no message or log line holds a code or token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import jwt

from core.config import Settings

HTTP_TIMEOUT_SECONDS = 10.0
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_TTL_SECONDS = 3600.0
# An id token naming an unknown key id makes us refetch the JWKS (the provider rotated its keys), but at most
# this often: otherwise a stream of forged key ids would turn every callback into a request to the provider.
JWKS_FORCED_REFRESH_SECONDS = 30.0
LEEWAY_SECONDS = 60  # clock skew tolerated on exp/iat/nbf between the provider and us
# Public-key algorithms only: with an HMAC algorithm the "key" would be the client secret, and accepting
# whatever the token header asks for is the classic way to let a forger pick the key.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class OIDCError(Exception):
    """A sign-in that cannot go on; ``status`` is what the page answers and ``message`` is safe to show."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class FlowError(OIDCError):
    """The callback does not belong to a flow this browser started (or the provider reported a failure)."""

    status = 400


class TokenError(OIDCError):
    """The provider's answer does not prove who the caller is: refused code, bad or foreign id token."""

    status = 401


class ProviderError(OIDCError):
    """The provider is unreachable or answered with something that is not OpenID Connect."""

    status = 502


class ConfigError(OIDCError):
    """The oidc_* settings cannot work; the message names the setting."""

    status = 404  # the page behaves as if SSO were off; the log line and message say which setting to fix


@dataclass(frozen=True)
class ClientConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientConfig:
        if not settings.oidc_issuer:
            raise ConfigError("Single sign-on is not configured (OIDC_ISSUER is unset).")
        check_url("OIDC_ISSUER", settings.oidc_issuer, config=True)
        if not settings.oidc_client_id:
            raise ConfigError("Single sign-on is not configured: OIDC_ISSUER is set but OIDC_CLIENT_ID is not.")
        scopes = settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")  # without it the provider answers plain OAuth2, with no id token
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        return cls(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id, client_secret=secret or None,
                   scopes=" ".join(scopes))


@dataclass(frozen=True)
class Provider:
    """What the discovery document tells us."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    signing_algorithms: frozenset[str]
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True)
class Flow:
    """One sign-in attempt's secrets: state (CSRF on the callback), nonce (binds the id token), PKCE verifier."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> Flow:
        # 43+ characters of urlsafe base64: RFC 7636's verifier alphabet and minimum length.
        return cls(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32), verifier=secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        return pkce_challenge(self.verifier)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def check_url(name: str, url: str, *, config: bool = False) -> str:
    """https, or http on a loopback address (a provider run locally for development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return url
    error = ConfigError if config else ProviderError
    raise error(f"{name} must be an https URL (http only on localhost); got {url[:200]!r}.")


# --- discovery and keys, cached per process ---------------------------------------------------------------

_discovery: dict[str, tuple[float, Provider]] = {}
_jwks: dict[str, tuple[float, list[dict[str, Any]]]] = {}
_jwks_forced: dict[str, float] = {}


def clear_caches() -> None:
    _discovery.clear()
    _jwks.clear()
    _jwks_forced.clear()


async def _get_json(http: httpx.AsyncClient, url: str, what: str) -> dict[str, Any]:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderError(f"The sign-in provider's {what} ({url}) could not be fetched: "
                            f"{type(exc).__name__}.") from None
    if response.status_code != 200:
        raise ProviderError(f"The sign-in provider's {what} ({url}) answered HTTP {response.status_code}.")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(f"The sign-in provider's {what} ({url}) is not a JSON object.")
    return body


async def discover(http: httpx.AsyncClient, issuer: str) -> Provider:
    now = time.monotonic()
    cached = _discovery.get(issuer)
    if cached and cached[0] > now:
        return cached[1]
    doc = await _get_json(http, issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
    # OIDC Discovery 4.3: the document's issuer must be the one we asked; every id token is then checked
    # against the document's exact spelling.
    if not isinstance(doc.get("issuer"), str) or doc["issuer"].rstrip("/") != issuer.rstrip("/"):
        raise ProviderError(f"The discovery document names issuer {str(doc.get('issuer'))[:200]!r}, "
                            f"not OIDC_ISSUER {issuer!r}.")
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(field), str):
            raise ProviderError(f"The discovery document lacks {field}.")
        check_url(f"the discovery document's {field}", doc[field])
    # The defaults OIDC Discovery 3 gives when a field is absent.
    algorithms = _strings(doc.get("id_token_signing_alg_values_supported")) or ["RS256"]
    methods = _strings(doc.get("token_endpoint_auth_methods_supported")) or ["client_secret_basic"]
    provider = Provider(issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
                        token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"],
                        signing_algorithms=frozenset(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS),
                        token_auth_methods=tuple(methods))
    if not provider.signing_algorithms:
        raise ProviderError(f"The provider signs id tokens only with {algorithms}; TutorPulse accepts "
                            f"{sorted(ASYMMETRIC_ALGORITHMS)}.")
    _discovery[issuer] = (now + DISCOVERY_TTL_SECONDS, provider)
    return provider


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


async def _key_set(http: httpx.AsyncClient, jwks_uri: str, *, refresh: bool) -> list[dict[str, Any]]:
    now = time.monotonic()
    cached = _jwks.get(jwks_uri)
    if cached and cached[0] > now and not refresh:
        return cached[1]
    body = await _get_json(http, jwks_uri, "key set (jwks_uri)")
    listed = body.get("keys")
    keys = [k for k in listed if isinstance(k, dict)] if isinstance(listed, list) else []
    _jwks[jwks_uri] = (now + JWKS_TTL_SECONDS, keys)
    return keys


def _pick(keys: list[dict[str, Any]], kid: str | None) -> dict[str, Any] | None:
    signing = [k for k in keys if k.get("use", "sig") == "sig"]
    if kid is not None:
        return next((k for k in signing if k.get("kid") == kid), None)
    return signing[0] if len(signing) == 1 else None  # no kid: only unambiguous with a single key


async def _signing_key(http: httpx.AsyncClient, provider: Provider, kid: str | None) -> dict[str, Any]:
    found = _pick(await _key_set(http, provider.jwks_uri, refresh=False), kid)
    now, last = time.monotonic(), _jwks_forced.get(provider.jwks_uri)
    if found is None and (last is None or now - last >= JWKS_FORCED_REFRESH_SECONDS):
        _jwks_forced[provider.jwks_uri] = now
        found = _pick(await _key_set(http, provider.jwks_uri, refresh=True), kid)
    if found is None:
        named = f"key id {kid[:64]!r}" if kid else "no key id"
        raise TokenError(f"The id token names {named}, which matches no signing key the provider publishes.")
    return found


# --- the flow ---------------------------------------------------------------------------------------------

def authorization_url(provider: Provider, config: ClientConfig, flow: Flow, redirect_uri: str) -> str:
    query = urlencode({
        "response_type": "code", "client_id": config.client_id, "redirect_uri": redirect_uri,
        "scope": config.scopes, "state": flow.state, "nonce": flow.nonce,
        "code_challenge": flow.challenge, "code_challenge_method": "S256",
    })
    separator = "&" if urlsplit(provider.authorization_endpoint).query else "?"
    return provider.authorization_endpoint + separator + query


def _client_auth(provider: Provider, config: ClientConfig, form: dict[str, str]) -> dict[str, str]:
    """Headers for the token request; adds client_id (and the secret, for client_secret_post) to the form."""
    if config.client_secret is None:  # a public client: PKCE is its only proof
        form["client_id"] = config.client_id
        return {}
    if "client_secret_basic" not in provider.token_auth_methods and "client_secret_post" in provider.token_auth_methods:
        form.update(client_id=config.client_id, client_secret=config.client_secret)
        return {}
    # RFC 6749 2.3.1: both parts are form-encoded before the Basic encoding (a secret may hold ':' or '%').
    pair = f"{quote(config.client_id, safe='')}:{quote(config.client_secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


async def exchange_code(http: httpx.AsyncClient, provider: Provider, config: ClientConfig, *, code: str,
                        verifier: str, redirect_uri: str) -> str:
    """The id token the token endpoint returns for this code."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    headers = {"Accept": "application/json", **_client_auth(provider, config, form)}
    try:
        response = await http.post(provider.token_endpoint, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderError(f"The sign-in provider's token endpoint could not be reached: {type(exc).__name__}.") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in (400, 401) and isinstance(body, dict) and isinstance(body.get("error"), str):
        error = body["error"][:64]
        if error == "invalid_client":
            raise ProviderError("The sign-in provider does not accept TutorPulse's client credentials: check "
                                "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET.")
        description = body.get("error_description")
        detail = f": {description[:200]}" if isinstance(description, str) else ""
        raise TokenError(f"The sign-in provider refused the sign-in code ({error}{detail}). Sign in again.")
    if response.status_code != 200 or not isinstance(body, dict):
        raise ProviderError(f"The sign-in provider's token endpoint answered HTTP {response.status_code}.")
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise ProviderError("The sign-in provider returned no id_token: is 'openid' among OIDC_SCOPES?")
    return id_token


_CLAIM_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidSignatureError, "its signature does not verify against the provider's published keys"),
    (jwt.ExpiredSignatureError, "it has expired (exp); check that this server's clock is right"),
    (jwt.ImmatureSignatureError, "it is not valid yet (nbf/iat in the future); check this server's clock"),
    (jwt.InvalidAudienceError, "it was issued for another client (aud is not OIDC_CLIENT_ID)"),
    (jwt.InvalidIssuerError, "it was issued by another issuer (iss is not OIDC_ISSUER)"),
)


async def verify_id_token(http: httpx.AsyncClient, provider: Provider, config: ClientConfig, id_token: str, *,
                          nonce: str) -> dict[str, Any]:
    """The id token's claims once its signature, iss, aud (and azp), exp, iat and nonce all check out."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise TokenError("The id token is not a well-formed JWT.") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str) or algorithm not in provider.signing_algorithms:
        raise TokenError(f"The id token is signed with {str(algorithm)[:16]!r}; the provider announces "
                         f"{sorted(provider.signing_algorithms)}.")
    jwk = await _signing_key(http, provider, kid if isinstance(kid, str) else None)
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm)
        claims = jwt.decode(id_token, key=key, algorithms=[algorithm], audience=config.client_id,
                            issuer=provider.issuer, leeway=LEEWAY_SECONDS,
                            options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"The id token was refused: it lacks the {exc.claim} claim.") from None
    except jwt.PyJWTError as exc:
        reason = next((text for kind, text in _CLAIM_ERRORS if isinstance(exc, kind)), None)
        raise TokenError(f"The id token was refused: {reason or type(exc).__name__}.") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != config.client_id:  # OIDC Core 3.1.3.7, step 5
        raise TokenError("The id token was refused: it names several audiences and azp is not OIDC_CLIENT_ID.")
    presented = claims.get("nonce")
    if not isinstance(presented, str) or not hmac.compare_digest(presented.encode(), nonce.encode()):
        raise TokenError("The id token was refused: its nonce does not match this sign-in (a replayed token?).")
    return claims


async def start(config: ClientConfig, flow: Flow, *, redirect_uri: str, http: httpx.AsyncClient | None = None) -> str:
    """The provider URL to send the browser to."""
    async with _client(http) as client:
        return authorization_url(await discover(client, config.issuer), config, flow, redirect_uri)


async def complete(config: ClientConfig, flow: Flow, *, code: str, redirect_uri: str,
                   http: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """The verified id-token claims for the code the provider sent back."""
    async with _client(http) as client:
        provider = await discover(client, config.issuer)
        id_token = await exchange_code(client, provider, config, code=code, verifier=flow.verifier,
                                       redirect_uri=redirect_uri)
        return await verify_id_token(client, provider, config, id_token, nonce=flow.nonce)


@asynccontextmanager
async def _client(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The caller's client as is, or a fresh one closed afterwards."""
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as own:
        yield own
