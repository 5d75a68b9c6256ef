"""Alembic environment: one migration history for SQLite and PostgreSQL."""
from __future__ import annotations

from alembic import context

import domain.registry  # noqa: F401 - registers every product table on the metadata
import synth.truth  # noqa: F401 - the simulation's ground truth shares the database, never the product's code
from core.db import get_engine
from domain.registry import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = get_engine(url)
    with engine.connect() as connection:
        # batch mode: SQLite cannot ALTER most things; Alembic rewrites the table instead.
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
