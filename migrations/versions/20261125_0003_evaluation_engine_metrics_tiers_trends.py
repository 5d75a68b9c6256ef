"""evaluation engine metrics tiers trends

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:40:38.002189
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing metric rows get empty/zero secondary metrics until their next evaluation.
    op.create_table('tier_cutoffs',
    sa.Column('cutoff_id', sa.Integer(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('population', sa.Integer(), nullable=False),
    sa.Column('lower_bounds', sa.JSON(), nullable=False),
    sa.Column('shares', sa.JSON(), nullable=False),
    sa.Column('rules_version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('rules_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('cutoff_id')
    )
    with op.batch_alter_table('tier_cutoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tier_cutoffs_effective_date'), ['effective_date'], unique=False)

    op.create_table('tier_history',
    sa.Column('tier_history_id', sa.Integer(), nullable=False),
    sa.Column('tutor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('assigned_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('previous_tier', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('performance_index', sa.Float(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('rules_version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tutor_id'], ['tutors.tutor_id'], ),
    sa.PrimaryKeyConstraint('tier_history_id')
    )
    with op.batch_alter_table('tier_history', schema=None) as batch_op:
        batch_op.create_index('ix_tier_history_tutor_time', ['tutor_id', 'assigned_at'], unique=False)

    op.create_table('tutor_weekly_trends',
    sa.Column('trend_id', sa.Integer(), nullable=False),
    sa.Column('tutor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('week_ending', sa.Date(), nullable=False),
    sa.Column('moving_averages', sa.JSON(), nullable=False),
    sa.Column('rules_version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tutor_id'], ['tutors.tutor_id'], ),
    sa.PrimaryKeyConstraint('trend_id'),
    sa.UniqueConstraint('tutor_id', 'week_ending', name='uq_weekly_trend_tutor_week')
    )
    with op.batch_alter_table('tutor_weekly_trends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tutor_weekly_trends_tutor_id'), ['tutor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tutor_weekly_trends_week_ending'), ['week_ending'], unique=False)

    with op.batch_alter_table('tutor_performance_metrics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response_time_p95_minutes', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('satisfaction_avg', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('satisfaction_by_subject', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('satisfaction_by_session_type', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('trainings_completed', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('pd_completion_rate', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('availability_changes_per_week', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('availability_hours_delta', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('technical_issues_per_session', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('late_start_rate', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('login_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('session_prep_minutes_avg', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('engagement_parts', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('performance_index', sa.Float(), nullable=True))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('tutor_performance_metrics', schema=None) as batch_op:
        batch_op.drop_column('performance_index')
        batch_op.drop_column('engagement_parts')
        batch_op.drop_column('session_prep_minutes_avg')
        batch_op.drop_column('login_count')
        batch_op.drop_column('late_start_rate')
        batch_op.drop_column('technical_issues_per_session')
        batch_op.drop_column('availability_hours_delta')
        batch_op.drop_column('availability_changes_per_week')
        batch_op.drop_column('pd_completion_rate')
        batch_op.drop_column('trainings_completed')
        batch_op.drop_column('satisfaction_by_session_type')
        batch_op.drop_column('satisfaction_by_subject')
        batch_op.drop_column('satisfaction_avg')
        batch_op.drop_column('response_time_p95_minutes')

    with op.batch_alter_table('tutor_weekly_trends', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tutor_weekly_trends_week_ending'))
        batch_op.drop_index(batch_op.f('ix_tutor_weekly_trends_tutor_id'))

    op.drop_table('tutor_weekly_trends')
    with op.batch_alter_table('tier_history', schema=None) as batch_op:
        batch_op.drop_index('ix_tier_history_tutor_time')

    op.drop_table('tier_history')
    with op.batch_alter_table('tier_cutoffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tier_cutoffs_effective_date'))

    op.drop_table('tier_cutoffs')
    # ### end Alembic commands ###
