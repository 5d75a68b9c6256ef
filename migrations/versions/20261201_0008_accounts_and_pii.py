"""accounts and PII: sign-in tokens; names and emails encrypted at rest (AES-GCM), emails found by keyed hash

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 01:30:00.000000

Existing rows are encrypted in place with the configured PII key (core.keys): upgrading a database needs the
same PII_KEY the application will run with. Downgrade decrypts them back.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import core.types
from core.crypto import ciphertext_length, decrypt, encrypt, keyed_hash


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (table, key column, encrypted columns with their plaintext limits, hashed column or None)
PII = (
    ("users", "user_id", {"email": 254, "name": 200}, "email"),
    ("tutors", "tutor_id", {"name": 200, "email": 254}, "email"),
    ("students", "student_id", {"name": 200}, None),
    ("outbox", "message_id", {"recipient": 254}, None),  # an email address (or a staff user id)
)
NULLABLE = {("outbox", "recipient")}


def _users_0007() -> sa.Table:
    """users as 0007 left it, minus the unique email: SQLite rebuilds the table from this (its reflection of the
    unnamed UNIQUE cannot be dropped by name)."""
    return sa.Table('users', sa.MetaData(),
        sa.Column('user_id', sa.String(64), primary_key=True),
        sa.Column('email', sa.String(254), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('password_hash', sa.String(255), nullable=True),
        sa.Column('tutor_id', sa.String(64), sa.ForeignKey('tutors.tutor_id'), nullable=True),
        sa.Column('student_id', sa.String(64), sa.ForeignKey('students.student_id'), nullable=True),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', core.types.UTCDateTime(timezone=True), nullable=False))


def _rewrite(table: str, key: str, columns: dict, hashed: str | None, transform, with_hash: bool) -> None:
    conn = op.get_bind()
    names = list(columns)
    rows = conn.execute(sa.text(f"SELECT {key}, {', '.join(names)} FROM {table}")).all()
    sets = ", ".join(f"{c} = :{c}" for c in names) + (", email_hash = :email_hash" if with_hash else "")
    stmt = sa.text(f"UPDATE {table} SET {sets} WHERE {key} = :pk")
    for row in rows:
        values = {c: (None if row[i + 1] is None else transform(row[i + 1])) for i, c in enumerate(names)}
        if with_hash:
            values["email_hash"] = keyed_hash(row[names.index(hashed) + 1])
        conn.execute(stmt, {"pk": row[0], **values})


def upgrade() -> None:
    op.create_table('auth_tokens',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('auth_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_tokens_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_auth_tokens_expires_at'), ['expires_at'], unique=False)

    for table, key, columns, hashed in PII:
        sqlite = op.get_bind().dialect.name == 'sqlite'
        copy_from = _users_0007() if table == "users" and sqlite else None
        with op.batch_alter_table(table, schema=None, copy_from=copy_from) as batch_op:
            for column, chars in columns.items():
                batch_op.alter_column(column, type_=sa.String(ciphertext_length(chars)),
                                      existing_nullable=(table, column) in NULLABLE)
            if hashed:
                batch_op.add_column(sa.Column('email_hash', sa.String(length=64), nullable=True))
            if table == "users" and not sqlite:
                batch_op.drop_constraint('users_email_key', type_='unique')
        _rewrite(table, key, columns, hashed, encrypt, with_hash=bool(hashed))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('email_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index('ix_users_email_hash', ['email_hash'], unique=True)
        if op.get_bind().dialect.name == 'sqlite':  # the rebuild from _users_0007 dropped it
            batch_op.create_index('ix_users_role', ['role'], unique=False)
    with op.batch_alter_table('tutors', schema=None) as batch_op:
        batch_op.create_index('ix_tutors_email_hash', ['email_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tutors', schema=None) as batch_op:
        batch_op.drop_index('ix_tutors_email_hash')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_email_hash')
    for table, key, columns, hashed in PII:
        _rewrite(table, key, columns, hashed, decrypt, with_hash=False)
        with op.batch_alter_table(table, schema=None) as batch_op:
            if hashed:
                batch_op.drop_column('email_hash')
            for column, chars in columns.items():
                batch_op.alter_column(column, type_=sqlmodel.sql.sqltypes.AutoString(length=chars),
                                      existing_nullable=(table, column) in NULLABLE)
            if table == "users":
                batch_op.create_unique_constraint('users_email_key', ['email'])
    with op.batch_alter_table('auth_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_tokens_expires_at'))
        batch_op.drop_index(batch_op.f('ix_auth_tokens_user_id'))
    op.drop_table('auth_tokens')
