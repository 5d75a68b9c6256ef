"""intervention framework: task states, approvals, programs, outbox delivery, case events, stored facts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 03:34:23.590729
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before this revision: plain tasks, no approval, revision 0; their in-app messages were delivered.
    op.create_table('intervention_events',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('intervention_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['intervention_id'], ['interventions.intervention_id'], ),
    sa.PrimaryKeyConstraint('event_id'),
    sa.UniqueConstraint('intervention_id', 'revision', 'event', name='uq_intervention_event')
    )
    with op.batch_alter_table('intervention_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intervention_events_intervention_id'), ['intervention_id'], unique=False)

    with op.batch_alter_table('churn_predictions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.JSON(), server_default='{}', nullable=False))

    with op.batch_alter_table('interventions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=20), server_default='task', nullable=False))
        batch_op.add_column(sa.Column('parent_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('risk_level', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('churn_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('requires_approval', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('approved_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_action_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('opened_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('responded_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('follow_up_result', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('ends_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='0', nullable=False))
        batch_op.alter_column('intervention_id',
               existing_type=sa.VARCHAR(length=160),
               type_=sqlmodel.sql.sqltypes.AutoString(length=200),
               existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_interventions_intervention_type'), ['intervention_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_interventions_parent_id'), ['parent_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient_role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True))
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), server_default='sent', nullable=False))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column('sent_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('opened_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('responded_at', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('response', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.alter_column('message_id',
               existing_type=sa.VARCHAR(length=200),
               type_=sqlmodel.sql.sqltypes.AutoString(length=260),
               existing_nullable=False)
        batch_op.alter_column('intervention_id',
               existing_type=sa.VARCHAR(length=160),
               type_=sqlmodel.sql.sqltypes.AutoString(length=200),
               existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_tutor_id'), ['tutor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_tutor_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_status'))
        batch_op.alter_column('intervention_id',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
               type_=sa.VARCHAR(length=160),
               existing_nullable=False)
        batch_op.alter_column('message_id',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=260),
               type_=sa.VARCHAR(length=200),
               existing_nullable=False)
        batch_op.drop_column('response')
        batch_op.drop_column('responded_at')
        batch_op.drop_column('opened_at')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
        batch_op.drop_column('status')
        batch_op.drop_column('recipient')
        batch_op.drop_column('recipient_role')

    with op.batch_alter_table('interventions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interventions_parent_id'))
        batch_op.drop_index(batch_op.f('ix_interventions_intervention_type'))
        batch_op.alter_column('intervention_id',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
               type_=sa.VARCHAR(length=160),
               existing_nullable=False)
        batch_op.drop_column('revision')
        batch_op.drop_column('ends_at')
        batch_op.drop_column('follow_up_result')
        batch_op.drop_column('responded_at')
        batch_op.drop_column('opened_at')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('first_action_at')
        batch_op.drop_column('approved_at')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('requires_approval')
        batch_op.drop_column('churn_score')
        batch_op.drop_column('risk_level')
        batch_op.drop_column('parent_id')
        batch_op.drop_column('step')

    with op.batch_alter_table('churn_predictions', schema=None) as batch_op:
        batch_op.drop_column('facts')

    with op.batch_alter_table('intervention_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intervention_events_intervention_id'))

    op.drop_table('intervention_events')
