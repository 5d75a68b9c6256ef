"""model registry: versioned ML models (candidate / live / retired / rejected) and the model's scores on predictions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_versions',
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('criterion', sa.Float(), nullable=True),
    sa.Column('data_start', sa.Date(), nullable=False),
    sa.Column('data_end', sa.Date(), nullable=False),
    sa.Column('label_source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('training_rows', sa.Integer(), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('retired_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('version')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_kind'), ['kind'], unique=False)
        # Partial unique index (SQLite and PostgreSQL): at most one live version per kind.
        where = sa.text("status = 'live'")
        batch_op.create_index('uq_model_versions_one_live', ['kind'], unique=True,
                              sqlite_where=where, postgresql_where=where)

    with op.batch_alter_table('churn_predictions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_churn_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('model_risk_level', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('model_factors', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('ml_model_version', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('churn_predictions', schema=None) as batch_op:
        batch_op.drop_column('ml_model_version')
        batch_op.drop_column('model_factors')
        batch_op.drop_column('model_risk_level')
        batch_op.drop_column('model_churn_score')

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_model_versions_one_live')
        batch_op.drop_index(batch_op.f('ix_model_versions_kind'))

    op.drop_table('model_versions')
