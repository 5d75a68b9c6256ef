"""tutor notes: managers' annotations on the tutor profile page (author, text, time)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 06:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tutor_notes',
    sa.Column('note_id', sa.Integer(), nullable=False),
    sa.Column('tutor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('author_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.user_id'], ),
    sa.ForeignKeyConstraint(['tutor_id'], ['tutors.tutor_id'], ),
    sa.PrimaryKeyConstraint('note_id')
    )
    with op.batch_alter_table('tutor_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tutor_notes_tutor_id'), ['tutor_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tutor_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tutor_notes_tutor_id'))

    op.drop_table('tutor_notes')
