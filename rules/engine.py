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

    def _run(self) -> None:
        """No background dispatch threads. durable-rules' Host polls every ruleset from two timer threads
        (queued actions, rule timers) without any lock; racing our own calls into the C engine aborted the
        process in delete_state. We use neither feature: actions fire synchronously inside post/assert_fact."""

    def get_action(self, action_name: str):  # noqa: ANN201 - durable-rules' callback shape
        def _record(_context) -> None:  # noqa: ANN001
            self.fired.append(action_name)

        return _record


class DurableRulesEvaluator:
    """One Host per process, serialised by a lock (the C engine is not thread-safe); rulesets registered once
    per version name."""

    _lock = threading.Lock()
    _host: _RecordingHost | None = None
    _registered: set[str] = set()
    _message_id = itertools.count()

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
        """Fires rules against one set of facts; returns the fired rule ids in firing order.

        ``fact`` mode fires every matching rule; ``event`` mode fires only the first match (by priority).
        Every evaluation uses the one session "eval" with a fresh fact id, retracted afterwards: deleting a
        session's state after a message no rule handled crashes the C engine (segfault), and leaving a session
        per evaluation runs into its limit of 1024 live sessions (MemoryError).
        """
        clean = {k: v for k, v in facts.items() if v is not None}
        with cls._lock:
            host = cls._get_host()
            host.fired = []
            message = {"sid": "eval", "id": f"m{next(cls._message_id)}", **clean}
            if mode == "event":
                try:
                    host.post(ruleset, message)  # a matched event is consumed by the rule that fires
                except durable.engine.MessageNotHandledException:
                    pass
            else:
                try:
                    host.assert_fact(ruleset, message)
                except durable.engine.MessageNotHandledException:
                    pass
                try:
                    host.retract_fact(ruleset, message)
                except durable.engine.MessageNotHandledException:
                    pass
            return list(host.fired)
