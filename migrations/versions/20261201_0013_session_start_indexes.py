"""index sessions by start: Home's KPIs count a window's sessions and rate its first sessions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 08:00:00.000000

Without them the KPI figures scanned every session (about 250 ms on a 90-day SQLite world, over the pages'
200 ms budget). (scheduled_start, no_show) answers the window's count and no-shows from the index alone; the
partial index holds first sessions only (about one in seven rows), the ones the first-session success rate reads.
Both are plain CREATE INDEX: on SQLite a batch rebuild would drop the tables' triggers.
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_sessions_start', 'sessions', ['scheduled_start', 'no_show'], unique=False)
    op.create_index('ix_sessions_first_start', 'sessions', ['scheduled_start'], unique=False,
                    sqlite_where=sa.text('session_number = 1'), postgresql_where=sa.text('session_number = 1'))


def downgrade() -> None:
    op.drop_index('ix_sessions_first_start', table_name='sessions')
    op.drop_index('ix_sessions_start', table_name='sessions')
