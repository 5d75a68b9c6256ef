"""free text encrypted at rest: managers' notes on a tutor and the outbox's subjects and bodies

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:00:00.000000

A note is whatever a manager writes about a tutor; an outbox message names its recipient's tutor and a student's
feedback reminder carries the feedback link, a credential. They are now AES-GCM ciphertext like names and emails
(core.crypto, 0008). Existing rows are encrypted in place with the configured PII key, so upgrading needs the
PII_KEY the application runs with; downgrade decrypts them back. Neither table has triggers, so SQLite's batch
rebuild loses nothing.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from core.crypto import ciphertext_length, decrypt, encrypt


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# (table, key column, {column: plaintext limit})
FREE_TEXT = (
    ("tutor_notes", "note_id", {"body": 4000}),
    ("outbox", "message_id", {"subject": 200, "body": 4000}),
)


def _rewrite(table: str, key: str, columns: dict[str, int], transform) -> None:  # noqa: ANN001
    conn = op.get_bind()
    names = list(columns)
    rows = conn.execute(sa.text(f"SELECT {key}, {', '.join(names)} FROM {table}")).all()
    stmt = sa.text(f"UPDATE {table} SET {', '.join(f'{c} = :{c}' for c in names)} WHERE {key} = :pk")
    for row in rows:
        conn.execute(stmt, {"pk": row[0], **{c: transform(row[i + 1]) for i, c in enumerate(names)}})


def upgrade() -> None:
    for table, key, columns in FREE_TEXT:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, chars in columns.items():
                batch_op.alter_column(column, existing_type=sqlmodel.sql.sqltypes.AutoString(length=chars),
                                      type_=sa.String(ciphertext_length(chars)), existing_nullable=False)
        _rewrite(table, key, columns, encrypt)


def downgrade() -> None:
    for table, key, columns in FREE_TEXT:
        _rewrite(table, key, columns, decrypt)
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, chars in columns.items():
                batch_op.alter_column(column, existing_type=sa.String(ciphertext_length(chars)),
                                      type_=sqlmodel.sql.sqltypes.AutoString(length=chars), existing_nullable=False)
