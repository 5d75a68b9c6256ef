"""Live updates for the ops pages: a Server-Sent Events stream saying "something changed, fetch your parts again".

The stream carries no data beyond the change token (domain.dashboard.changes); the page's script (static/live.js)
then fetches each region's partial through its own route and Policy. Protocol, per connection:
- first a `retry:` hint and the current token as the event id (no event is dispatched), so a browser that
  reconnects sends it back as Last-Event-ID and a change made while it was away is not lost;
- `event: change` with the new token as id and data when the token differs from what the client last saw (the
  Last-Event-ID header, else the page's own `since` token, else the token at connection time);
- a comment line as heartbeat when nothing was sent for a while (proxies and idle timeouts);
- the response ends when the client goes away or after MAX_STREAM_SECONDS; EventSource reconnects by itself.
A client that does not ask for text/event-stream (curl, the access matrix) gets the current token as JSON instead,
which is also a plain polling fallback.

Database work is synchronous, so each check runs in the thread pool in a short session of its own: no transaction
is held across the stream. All streams of one app share one check per CHECK_SECONDS (an asyncio lock and a
cached token), so open pages do not multiply the queries.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.engine import Engine

from api.policy import StaffPlainActor
from core.db import session_scope
from core.types import utcnow
from domain.dashboard.changes import TOKEN_LENGTH, change_token

router = APIRouter(include_in_schema=False)

# Timings of the stream. Module constants rather than Settings: they shape the protocol (the 5 s promise of
# issue 8 rests on CHECK_SECONDS + COOLDOWN_SECONDS + a partial's render time), they are not deployment choices.
CHECK_SECONDS = 1.0
# After a `change`, the next check waits this much longer: a burst of ingestion refreshes each page at most every
# ~2 s instead of every second.
COOLDOWN_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 600.0
RETRY_MILLISECONDS = 2000
EVENT_STREAM = "text/event-stream"
TOKEN_PATTERN = rf"^[0-9a-f]{{{TOKEN_LENGTH}}}$"


@dataclass
class _SharedToken:
    """The app's latest token, read from the database at most twice per CHECK_SECONDS however many streams ask."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str = ""
    read_at: float = float("-inf")
    streams: int = 0  # open streams of this app: how tests (and an operator in a debugger) see they end

    async def current(self, engine: Engine) -> str:
        async with self.lock:
            # Half the check period: a stream checking every CHECK_SECONDS never gets a token older than that.
            if time.monotonic() - self.read_at >= CHECK_SECONDS / 2:
                self.token = await run_in_threadpool(read_token, engine)
                self.read_at = time.monotonic()
            return self.token


def read_token(engine: Engine) -> str:
    with session_scope(engine) as db:
        return change_token(db, now=utcnow())


def shared_token(request: Request) -> _SharedToken:
    # Kept on the app (not the module) so apps in one process, as in the tests, never share a token or a lock.
    state = request.app.state
    shared = getattr(state, "live_token", None)
    if shared is None:
        shared = state.live_token = _SharedToken()
    return shared


def _event(token: str) -> str:
    return f"id: {token}\nevent: change\ndata: {token}\n\n"


async def _stream(request: Request, shared: _SharedToken, baseline: str | None) -> AsyncIterator[str]:
    engine = request.app.state.engine
    shared.streams += 1
    try:
        started = time.monotonic()
        seen = await shared.current(engine)
        yield f"retry: {RETRY_MILLISECONDS}\nid: {seen}\n\n"
        if baseline is not None and baseline != seen:
            yield _event(seen)
        last_sent = time.monotonic()
        wait = CHECK_SECONDS
        while time.monotonic() - started < MAX_STREAM_SECONDS:
            await asyncio.sleep(wait)
            wait = CHECK_SECONDS
            if await request.is_disconnected():
                return
            token = await shared.current(engine)
            if token != seen:
                seen, last_sent, wait = token, time.monotonic(), CHECK_SECONDS + COOLDOWN_SECONDS
                yield _event(token)
            elif time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                last_sent = time.monotonic()
                yield ": still here\n\n"
    finally:
        # Also reached when Starlette cancels the generator because the client disconnected mid-wait.
        shared.streams -= 1


@router.get("/live/home")
async def home_changes(
    request: Request, _actor: StaffPlainActor,
    since: Annotated[str | None, Query(pattern=TOKEN_PATTERN, description="the page's change token")] = None,
    accept: Annotated[str, Header()] = "",
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> Response:
    """Home's change events. STAFF_PLAIN: the token says that something changed, not what, so reading it is not a
    read of risk data and leaves no audit row; the partials it leads to are audited like Home itself."""
    if EVENT_STREAM not in accept.lower():
        return JSONResponse({"token": await run_in_threadpool(read_token, request.app.state.engine)},
                            headers={"Cache-Control": "no-store"})
    # A reconnecting browser's Last-Event-ID is newer than the `since` baked into the page's stream URL.
    baseline = last_event_id or since
    # no-store: never cached; X-Accel-Buffering: a buffering proxy (nginx) would hold events back.
    return StreamingResponse(_stream(request, shared_token(request), baseline), media_type=EVENT_STREAM,
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
