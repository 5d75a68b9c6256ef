"""index student_feedback.created_at: the live pages' change token reads the newest feedback every second

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:45:00.000000

Not a batch operation: on SQLite a batch rebuild of a table would drop triggers, and CREATE INDEX needs none.
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_student_feedback_created_at', 'student_feedback', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_student_feedback_created_at', table_name='student_feedback')
