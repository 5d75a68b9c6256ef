"""audit log append-only at the database level: UPDATE always refused, DELETE only of rows past the legal floor

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:00:00.000000

The product never changes audit rows; these triggers make that hold for anything else holding a connection too
(a psql session, a future code path). Only the retention job deletes, and only rows older than the 3-year floor
(settings.audit_retention_days cannot go below 1096 days, so it never runs into the trigger).

Note for later migrations: on SQLite a batch_alter_table on audit_log recreates the table and drops these
triggers; such a migration must create them again (upgrade() below is written so it can be called for that).
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FLOOR_DAYS = 1095  # 3 years: the legal minimum the audit trail is kept for
MESSAGE = "audit_log is append-only"

# SQLite keeps `at` (core.types.UTCDateTime) as naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff", which julianday()
# parses; 'now' is UTC too. An unparseable value counts as young (NOT coalesce(..., 0)): refuse rather than lose.
SQLITE = [
    f"""CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: rows cannot be updated'); END""",
    f"""CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN NOT coalesce(julianday(OLD.at) < julianday('now') - {FLOOR_DAYS}, 0)
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: rows younger than {FLOOR_DAYS} days cannot be deleted'); END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS audit_log_no_delete", "DROP TRIGGER IF EXISTS audit_log_no_update"]

# Hours, not days: interval '1 day' follows the session's time zone across DST, SQLite's julianday is 24 h flat.
# ERRCODE restrict_violation (class 23) makes drivers raise IntegrityError, as SQLite's RAISE(ABORT) does.
# TRUNCATE skips row triggers, hence the statement-level one.
POSTGRES = [
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                IF OLD.at < now() - interval '{FLOOR_DAYS * 24} hours' THEN
                    RETURN OLD;
                END IF;
                RAISE EXCEPTION '{MESSAGE}: rows younger than {FLOOR_DAYS} days cannot be deleted (audit_id %)',
                    OLD.audit_id USING ERRCODE = 'restrict_violation';
            END IF;
            IF TG_OP = 'TRUNCATE' THEN
                RAISE EXCEPTION '{MESSAGE}: the table cannot be truncated' USING ERRCODE = 'restrict_violation';
            END IF;
            RAISE EXCEPTION '{MESSAGE}: rows cannot be updated (audit_id %)', OLD.audit_id
                USING ERRCODE = 'restrict_violation';
        END
        $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]
POSTGRES_DROP = ["DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
                 "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
                 "DROP FUNCTION IF EXISTS audit_log_append_only()"]


def _statements(drop: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        return SQLITE_DROP if drop else SQLITE
    if dialect == "postgresql":
        return POSTGRES_DROP if drop else POSTGRES
    raise NotImplementedError(f"audit_log triggers are written for sqlite and postgresql, not {dialect}")


def upgrade() -> None:
    for sql in _statements(drop=False):
        op.execute(sql)


def downgrade() -> None:
    for sql in _statements(drop=True):
        op.execute(sql)
