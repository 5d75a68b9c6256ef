"""The rule evaluator interface and its durable-rules implementation.

durable-rules is unmaintained and has sharp edges (bare error codes, global C state, threads per Host,
rulesets that cannot be replaced), so the rest of TutorPulse sees only ``evaluate(facts) -> fired rule ids``.
It runs in activities only: creating a Host starts threads, which the workflow sandbox refuses.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Protocol

import durable.engine


class Evaluator(Protocol):
    def evaluate(self, ruleset: str, facts: dict[str, Any], mode: str = "fact") -> list[str]: ...


class _RecordingHost(durable.engine.Host):
    """A Host whose actions only record which rule fired; what a rule means is resolved in Python."""

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[str] = []

    def get_action(self, action_name: str):  # noqa: ANN201 - durable-rules' callback shape
        def _record(_context) -> None:  # noqa: ANN001
            self.fired.append(action_name)

        return _record


class DurableRulesEvaluator:
    """One Host per process (each Host leaks polling threads); rulesets registered once per version name."""

    _lock = threading.Lock()
    _host: _RecordingHost | None = None
    _registered: set[str] = set()
    _sid = itertools.count()

    @classmethod
    def _get_host(cls) -> _RecordingHost:
        if cls._host is None:
            cls._host = _RecordingHost()
        return cls._host

    @classmethod
    def register(cls, name: str, compiled: dict[str, Any]) -> None:
        """Registers ``compiled`` (durable-rules JSON for one ruleset) under ``name`` unless already there.

        Versions get distinct names because a registered ruleset cannot be replaced.
        """
        with cls._lock:
            if name in cls._registered:
                return
            try:
                cls._get_host().register_rulesets({name: compiled})
            except Exception as exc:  # durable-rules raises bare codes; say which ruleset failed
                raise ValueError(f"durable-rules refused ruleset {name!r}: {exc}") from exc
            cls._registered.add(name)

    @classmethod
    def evaluate(cls, ruleset: str, facts: dict[str, Any], mode: str = "fact") -> list[str]:
        """Fires rules against one set of facts in a fresh state; returns the fired rule ids in firing order.

        ``fact`` mode fires every matching rule; ``event`` mode fires only the first match.
        """
        clean = {k: v for k, v in facts.items() if v is not None}
        with cls._lock:
            host = cls._get_host()
            sid = f"eval-{next(cls._sid)}"
            host.fired = []
            message = {"sid": sid, "id": "facts", **clean}
            try:
                if mode == "event":
                    try:
                        host.post(ruleset, message)
                    except durable.engine.MessageNotHandledException:
                        pass
                else:
                    try:
                        host.assert_fact(ruleset, message)
                    except durable.engine.MessageNotHandledException:
                        pass
            finally:
                # A unique sid and delete_state: a ruleset holds at most 1024 live sessions.
                try:
                    host.delete_state(ruleset, sid)
                except Exception:  # noqa: BLE001, S110 - state may not exist when nothing matched
                    pass
            return list(host.fired)
