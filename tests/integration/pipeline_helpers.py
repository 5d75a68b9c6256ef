"""Shared pieces of the end-to-end tests: a tutor history that scores Critical, and polling helpers."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tests.factories import session_payload


def troubled_history(tutor: str, now: datetime, *, student: str = "student_2") -> list[dict[str, Any]]:
    """A week of sessions with a poor first session, 4 reschedules and 3 no-shows: Critical by the PRD rules."""
    out = []
    for n in range(1, 11):
        at = now - timedelta(days=n % 7, hours=1 + n)
        no_show = n in (2, 5, 8)
        extra: dict[str, Any] = {
            "session_id": f"sess_{tutor}_t{n}", "tutor_initiated_reschedule": n in (3, 4, 6, 7),
            "no_show": no_show, "student_rating": 2 if n == 1 else 3.0, "engagement_score": 0.3,
        }
        if no_show:
            extra.update(actual_start=None, student_rating=None, engagement_score=None)
        out.append(session_payload(n, tutor=tutor, student=student, at=at, **extra))
    return out


async def eventually(check: Callable[[], Any], *, timeout: float = 30, what: str = "condition") -> Any:
    """Polls ``check`` (sync, run in a thread) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.25)
