"""outbox.intervention_id nullable: a student's feedback reminder is an outbox email that belongs to no case

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 07:00:00.000000

The reminder (domain.feedback.reminders) goes through the same outbox and SMTP delivery as every other email, but
it is not an intervention on the tutor: filing it under one would put a student's reminder among the tutor's cases.
The outbox has no triggers, so SQLite's batch rebuild of the table loses nothing.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('intervention_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
                              nullable=True)


def downgrade() -> None:
    # The older schema cannot hold a message without a case: those rows (feedback reminders) go.
    op.execute(sa.text("DELETE FROM outbox WHERE intervention_id IS NULL"))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('intervention_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
                              nullable=False)
