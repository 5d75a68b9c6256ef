"""Rate limits on the endpoints an anonymous caller can hammer (login, public feedback), via the `limits` package.

The limit strings live in Settings (`login_rate_limit`, `feedback_rate_limit`) in the package's notation
("10/minute", "5 per second"). Counters sit in `settings.rate_limit_storage_uri`: memory:// is per process, so
several API processes need a shared store (redis://host:6379) to enforce one limit between them.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache

from fastapi import FastAPI, HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from core.config import Settings

# Settings fields that hold a limit string; checked when the limiter is installed so a typo fails at start-up
# rather than on the first login.
LIMIT_SETTINGS = ("login_rate_limit", "feedback_rate_limit")


@lru_cache(maxsize=64)
def parse_limit(limit: str) -> RateLimitItem:
    return parse(limit)


class RateLimiter:
    """One storage and a moving-window strategy: no burst of 2N at a window boundary, unlike a fixed window."""

    def __init__(self, storage_uri: str) -> None:
        self.storage = storage_from_string(storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)

    def hit(self, limit: str, *key: str) -> tuple[bool, int]:
        """Counts one request against `limit` for `key`; returns (allowed, seconds until a slot frees)."""
        item = parse_limit(limit)
        if self.strategy.hit(item, *key):
            return True, 0
        reset_time, _remaining = self.strategy.get_window_stats(item, *key)
        # Whole seconds (Retry-After takes an integer), rounded up and at least 1 so a client retrying
        # exactly then is not refused again.
        return False, max(1, math.ceil(reset_time - time.time()))

    def reset(self) -> None:
        self.storage.reset()


def install_rate_limiter(app: FastAPI, settings: Settings) -> RateLimiter:
    for field in LIMIT_SETTINGS:
        value = getattr(settings, field)
        try:
            parse_limit(value)
        except ValueError as exc:
            raise ValueError(f"{field}: {value!r} is not a rate limit such as '10/minute'") from exc
    limiter = RateLimiter(settings.rate_limit_storage_uri)
    app.state.rate_limiter = limiter
    return limiter


def client_address(request: Request) -> str:
    # The TCP peer. Behind a reverse proxy that is the proxy itself, so every caller shares one budget: run
    # uvicorn with --proxy-headers and --forwarded-allow-ips set to the proxy's address so Starlette puts the
    # real client here. X-Forwarded-For is not read directly: any caller can forge it to dodge the limit.
    return request.client.host if request.client else "unknown"


def rate_limited(scope: str, setting: str) -> Callable[[Request], None]:
    """A dependency refusing with 429 once a client exceeds the limit in Settings field `setting`.

    `scope` separates budgets: failed logins do not eat into feedback submissions from the same address.
    """
    if setting not in Settings.model_fields:
        raise ValueError(f"rate_limited: {setting!r} is not a Settings field")

    # A plain def: FastAPI runs it in the thread pool, so a network store (redis://) does not block the loop.
    def dependency(request: Request) -> None:
        limit = getattr(request.app.state.settings, setting)
        limiter: RateLimiter = request.app.state.rate_limiter
        allowed, retry_after = limiter.hit(limit, scope, client_address(request))
        if not allowed:
            raise HTTPException(
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"Too many {scope} requests from this address (limit {limit}); "
                       f"retry in {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )

    return dependency
