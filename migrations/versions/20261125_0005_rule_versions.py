"""rule administration: versioned rule sets (draft / shadow / active / retired) and shadow decisions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _one_per_ruleset(batch_op, status: str) -> None:
    # Partial unique index (SQLite and PostgreSQL both have them): at most one row of this status per rule set.
    where = sa.text(f"status = '{status}'")
    batch_op.create_index(f'uq_rule_versions_one_{status}', ['ruleset'], unique=True,
                          sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    # Empty on creation: the service seeds each rule set from its shipped file (rules/*.yaml) on first use.
    op.create_table('rule_versions',
    sa.Column('rule_version_id', sa.Integer(), nullable=False),
    sa.Column('ruleset', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changelog', sa.Text(), server_default='', nullable=False),
    sa.Column('diff', sa.Text(), server_default='', nullable=False),
    sa.Column('based_on_version', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('rule_version_id'),
    sa.UniqueConstraint('ruleset', 'version', name='uq_rule_version')
    )
    with op.batch_alter_table('rule_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rule_versions_ruleset'), ['ruleset'], unique=False)
        for status in ('active', 'draft', 'shadow'):
            _one_per_ruleset(batch_op, status)

    op.create_table('shadow_decisions',
    sa.Column('shadow_decision_id', sa.Integer(), nullable=False),
    sa.Column('tutor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('as_of', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ruleset', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('shadow_version', sa.Integer(), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=False),
    sa.Column('would_create', sa.JSON(), nullable=False),
    sa.Column('would_cancel', sa.JSON(), nullable=False),
    sa.Column('active_create', sa.JSON(), nullable=False),
    sa.Column('active_cancel', sa.JSON(), nullable=False),
    sa.Column('differs', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tutor_id'], ['tutors.tutor_id'], ),
    sa.PrimaryKeyConstraint('shadow_decision_id'),
    sa.UniqueConstraint('tutor_id', 'as_of', 'ruleset', 'shadow_version', name='uq_shadow_decision')
    )
    with op.batch_alter_table('shadow_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_shadow_decisions_ruleset_version', ['ruleset', 'shadow_version'], unique=False)
        batch_op.create_index(batch_op.f('ix_shadow_decisions_tutor_id'), ['tutor_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('shadow_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shadow_decisions_tutor_id'))
        batch_op.drop_index('ix_shadow_decisions_ruleset_version')

    op.drop_table('shadow_decisions')
    with op.batch_alter_table('rule_versions', schema=None) as batch_op:
        for status in ('shadow', 'draft', 'active'):
            batch_op.drop_index(f'uq_rule_versions_one_{status}')
        batch_op.drop_index(batch_op.f('ix_rule_versions_ruleset'))

    op.drop_table('rule_versions')
