"""A small engine-built world with enough churn to train the churn model in seconds, for the registry, CLI,
retraining-workflow and replay tests.

The default scenario loses one or two tutors a month, far too few for a 40-tutor, 60-day world to give the
temporal split churns in both training and validation; this copy raises the churners' share and the
resignation rate. The world is simulated once into a SQLite file and copied row by row into each test's own
database (SQLite or PostgreSQL), which is much faster than simulating it again and gives every database the
same rows.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import Integer, func, insert, select, text
from sqlalchemy.engine import Engine

import synth.truth  # noqa: F401 - registers the truth tables on the metadata, so the copy includes them
from core.db import get_engine
from core.migrate import upgrade
from domain.registry import metadata
from synth.backfill import backfill
from synth.scenario import DEFAULT_PATH

WORLD_END = datetime(2026, 11, 20, tzinfo=UTC)  # midnight: the 19th is the last complete day
WORLD_DAYS, WORLD_TUTORS, WORLD_SESSIONS_PER_DAY, WORLD_SEED = 60, 40, 150, 3


def churny_scenario(folder: Path) -> Path:
    sc = yaml.safe_load(DEFAULT_PATH.read_text())
    sc["archetypes"]["churner"]["share"] += sc["archetypes"]["high_performer"]["share"] - 0.05
    sc["archetypes"]["high_performer"]["share"] = 0.05
    sc["churn"]["resignation_per_month"] = 0.08
    path = folder / "churny.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def build_template(folder: Path) -> str:
    """Simulates the world into folder/world.db; returns its URL."""
    url = f"sqlite:///{folder / 'world.db'}"
    upgrade(url)
    report = backfill(get_engine(url), days=WORLD_DAYS, seed=WORLD_SEED, n_tutors=WORLD_TUTORS,
                      sessions_per_day=WORLD_SESSIONS_PER_DAY, end=WORLD_END, progress=lambda _line: None,
                      scenario=churny_scenario(folder))
    assert report.churned >= 10, "too few churns to train on: the scenario above no longer produces them"
    get_engine(url).dispose()
    return url


def copy_world(src_url: str, dst: Engine) -> None:
    """Every row of every table (parents first) from the template into a migrated, empty database."""
    src = get_engine(src_url)
    with src.connect() as s, dst.begin() as d:
        for table in metadata.sorted_tables:
            rows = [dict(r) for r in s.execute(select(table)).mappings()]
            if rows:
                d.execute(insert(table), rows)
        if dst.dialect.name == "postgresql":
            # Explicit ids do not advance PostgreSQL's sequences: move them past the copied rows.
            for table in metadata.sorted_tables:
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and isinstance(pk[0].type, Integer) and pk[0].autoincrement in (True, "auto"):
                    top = d.execute(select(func.max(pk[0]))).scalar()
                    if top is not None:
                        d.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), {top})"))
