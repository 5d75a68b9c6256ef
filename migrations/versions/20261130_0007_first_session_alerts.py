"""first-session alerts: upcoming first sessions scored by the first-session model (open / acknowledged alerts)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('first_session_alerts',
    sa.Column('alert_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('tutor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('student_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('scheduled_start', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('factors', sa.JSON(), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('rules_version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('rules_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reminder_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('acknowledged_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['student_id'], ['students.student_id'], ),
    sa.ForeignKeyConstraint(['tutor_id'], ['tutors.tutor_id'], ),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('first_session_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_first_session_alerts_tutor_id'), ['tutor_id'], unique=False)
        # The staff list: open alerts, soonest session first.
        batch_op.create_index('ix_first_session_alerts_status_start', ['status', 'scheduled_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('first_session_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_first_session_alerts_status_start')
        batch_op.drop_index(batch_op.f('ix_first_session_alerts_tutor_id'))

    op.drop_table('first_session_alerts')
