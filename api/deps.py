"""Request-scoped dependencies: the database session and the Temporal client."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client

from core.config import Settings
from core.db import session_scope
from core.temporal import connect

log = logging.getLogger(__name__)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine_dep(request: Request) -> Engine:
    return request.app.state.engine


def get_db(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine) as db:
        yield db


RECONNECT_AFTER_SECONDS = 10.0


async def get_temporal(request: Request) -> Client | None:
    """The shared client, reconnecting lazily: the API serves reads while Temporal is down.

    After a failed attempt, requests get None at once for a few seconds instead of each waiting on a connect.
    """
    state = request.app.state
    if state.temporal is None and time.monotonic() >= getattr(state, "temporal_retry_at", 0.0):
        async with state.temporal_lock:
            if state.temporal is None and time.monotonic() >= getattr(state, "temporal_retry_at", 0.0):
                try:
                    state.temporal = await asyncio.wait_for(connect(state.settings), timeout=3)
                except Exception:  # noqa: BLE001 - callers degrade (pending + sweep), they do not fail
                    state.temporal_retry_at = time.monotonic() + RECONNECT_AFTER_SECONDS
                    log.warning("Temporal at %s unreachable", state.settings.temporal_address)
    return state.temporal


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine_dep)]
# scope="function": the transaction commits before the response is sent, so a client acting on the answer (a
# token just issued, a row just written) never races the commit.
DbDep = Annotated[Session, Depends(get_db, scope="function")]
TemporalDep = Annotated[Client | None, Depends(get_temporal)]
