"""One small engine-built world for the unit tests of metrics, detectors, scores and tiers.

Built once per run: those tests only read its sessions and events (the tier test writes tier rows, which no
other test reads).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.engine_fixtures import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("engine_world"))
    yield w
    w.engine.dispose()
