"""PII at rest: names and email addresses are AES-GCM ciphertext in the tables, found by keyed hash, readable only
with the configured key; the raw tables are read directly, not through the product."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from core.config import Settings
from core.crypto import DecryptionError, decrypt, encrypt, keyed_hash
from core.db import get_engine, session_scope
from core.keys import Keys, keys_for, new_key
from core.migrate import downgrade, upgrade
from core.types import utcnow
from domain.interventions.models import OutboxMessage
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.tutors.notes import add_note, list_notes
from domain.users import service as user_service
from domain.users.models import User
from tests.factories import intervention_row, seed_people

PLAINTEXTS = ("Grace Hopper", "grace.hopper@navy.example", "Ada Lovelace", "ada@analytical.example", "Student Zed",
              "ops.person@tutorpulse.example")


def _raw(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_names_and_emails_are_ciphertext_in_the_raw_tables(engine: Engine) -> None:
    seed_people(engine, tutors=1, students=0, tag="pii")
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id="t_grace", name="Grace Hopper", email="grace.hopper@navy.example",
                     onboarding_date=date(2026, 1, 5)))
        db.add(Student(student_id="s_zed", name="Student Zed", age=15, grade_level="10"))
        user_service.create_user(db, email="ada@analytical.example", name="Ada Lovelace", role="ops_manager",
                                 password="a long enough passphrase")
        db.flush()
        db.add(intervention_row("iv-pii", "t_grace", "A1_coaching_tips", recommended=utcnow()))
        db.flush()
        db.add(OutboxMessage(message_id="m-pii", intervention_id="iv-pii", tutor_id="t_grace", channel="email",
                             recipient="ops.person@tutorpulse.example", subject="s", body="b"))
    rows = (_raw(engine, "SELECT name, email, email_hash FROM tutors WHERE tutor_id = 't_grace'")
            + _raw(engine, "SELECT name, email, email_hash, password_hash FROM users")
            + _raw(engine, "SELECT name FROM students WHERE student_id = 's_zed'")
            + _raw(engine, "SELECT recipient FROM outbox"))
    dump = repr(rows).lower()
    for plain in PLAINTEXTS:
        assert plain.lower() not in dump, f"{plain!r} stored in clear"
    assert "a long enough passphrase" not in dump
    (grace,) = _raw(engine, "SELECT name, email, email_hash FROM tutors WHERE tutor_id = 't_grace'")
    assert grace[0].startswith("v1.") and decrypt(grace[0]) == "Grace Hopper"
    assert grace[2] == keyed_hash("Grace.Hopper@navy.example ")  # normalised: case and spaces do not matter
    # The product reads plaintext back, and finds accounts by email through the hash.
    with session_scope(engine) as db:
        assert db.get(Tutor, "t_grace").email == "grace.hopper@navy.example"
        assert db.get(OutboxMessage, "m-pii").recipient == "ops.person@tutorpulse.example"
        found = user_service.by_email(db, "ADA@analytical.example")
        assert found is not None and found.name == "Ada Lovelace"
        assert db.execute(select(Tutor.tutor_id).where(Tutor.email_hash == keyed_hash("grace.hopper@navy.example"))
                          ).scalar_one() == "t_grace"
    # Equal plaintexts do not give equal ciphertexts (random nonce): the column reveals no duplicates.
    assert encrypt("Grace Hopper") != encrypt("Grace Hopper")


def test_a_wrong_key_cannot_read_and_a_rotated_key_still_can(tmp_path) -> None:  # noqa: ANN001
    old, new = new_key(), new_key()
    settings_old = Settings(pii_key=old, secret_key=new_key(), var_dir=tmp_path)
    keys_old = keys_for(settings_old)
    stored = encrypt("Grace Hopper", keys_old)
    stranger = Keys(secret=keys_old.secret, pii=keys_for(Settings(pii_key=new, var_dir=tmp_path)).pii)
    with pytest.raises(DecryptionError, match="neither PII_KEY nor in PII_PREVIOUS_KEYS"):
        decrypt(stored, stranger)
    rotated = keys_for(Settings(pii_key=new, pii_previous_keys=old, var_dir=tmp_path))
    assert decrypt(stored, rotated) == "Grace Hopper"
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(DecryptionError):
        decrypt(tampered, keys_old)


def test_a_malformed_key_names_the_setting(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="PII_KEY decodes to 5 bytes"):
        keys_for(Settings(pii_key="aGVsbG8=", var_dir=tmp_path))


def test_unset_keys_are_generated_once_and_kept(tmp_path) -> None:  # noqa: ANN001
    first = keys_for(Settings(var_dir=tmp_path, pii_key=None, secret_key=None))
    again = keys_for(Settings(var_dir=tmp_path, pii_key=None, secret_key=None))
    assert first == again and first.pii != first.secret
    assert oct((tmp_path / "keys" / "pii_key.key").stat().st_mode & 0o777) == "0o600"


def test_a_users_password_is_a_hash_that_verifies(engine: Engine) -> None:
    from domain.auth.service import authenticate

    with session_scope(engine) as db:
        user_service.create_user(db, email="bob@example.test", name="Bob", role="people_ops",
                                 password="bobs long passphrase")
    (stored,) = _raw(engine, "SELECT password_hash FROM users")
    assert stored[0].startswith("$argon2id$")
    with session_scope(engine) as db:
        assert authenticate(db, "BOB@example.test", "bobs long passphrase").role == "people_ops"
        assert authenticate(db, "bob@example.test", "wrong passphrase!!") is None
        assert authenticate(db, "nobody@example.test", "bobs long passphrase") is None
        with pytest.raises(user_service.AccountError, match="password: password must be at least 12"):
            user_service.create_user(db, email="c@example.test", name="C", role="admin", password="short")
        with pytest.raises(user_service.AccountError, match="email: an account with this email exists"):
            user_service.create_user(db, email="Bob@Example.test", name="B2", role="admin", password="x" * 12)
        assert db.execute(select(User)).scalars().all()[0].email == "bob@example.test"


def _note_and_messages(engine: Engine) -> None:
    with session_scope(engine) as db:
        db.add(Tutor(tutor_id="t_grace", name="Grace Hopper", email="grace.hopper@navy.example",
                     onboarding_date=date(2026, 1, 5)))
        manager = user_service.create_user(db, email="ada@analytical.example", name="Ada Lovelace",
                                           role="ops_manager", password="a long enough passphrase")
        db.flush()
        add_note(db, "t_grace", author_id=manager.user_id, body="Grace mentioned a family emergency", now=utcnow())
        db.add(OutboxMessage(message_id="m-link", intervention_id=None, tutor_id="t_grace", channel="email",
                             recipient="student@example.test", subject="How was your session with Grace?",
                             body="Rate it here: https://tp.example/feedback/secret-token", payload={}))


def test_notes_and_message_texts_are_ciphertext_in_the_raw_tables(engine: Engine) -> None:
    _note_and_messages(engine)
    dump = repr(_raw(engine, "SELECT body FROM tutor_notes") + _raw(engine, "SELECT subject, body FROM outbox"))
    for plain in ("family emergency", "Grace", "secret-token"):
        assert plain not in dump, f"{plain!r} stored in clear"
    with session_scope(engine) as db:
        (view,), total = list_notes(db, "t_grace")
        assert total == 1 and view.note.body == "Grace mentioned a family emergency"
        message = db.get(OutboxMessage, "m-link")
        assert message.subject == "How was your session with Grace?" and message.body.endswith("/secret-token")


def test_the_migration_encrypts_existing_notes_and_messages_and_downgrade_restores_them(db_url: str) -> None:
    engine = get_engine(db_url)
    downgrade(db_url, "0013")
    engine.dispose()
    seed_people(engine, tutors=1, students=0, tag="mig")
    with session_scope(engine) as db:
        tutor_id = db.execute(select(Tutor.tutor_id)).scalars().first()
        author = user_service.create_user(db, email="ada@analytical.example", name="Ada Lovelace", role="ops_manager",
                                          password="a long enough passphrase").user_id
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tutor_notes (tutor_id, author_id, body, created_at) "
                          "VALUES (:t, :a, 'Plain note about pay', :now)"), {"t": tutor_id, "a": author, "now": utcnow()})
        conn.execute(text("INSERT INTO outbox (message_id, tutor_id, channel, subject, body, payload, status, attempts, "
                          "created_at) VALUES ('m-old', :t, 'in_app', 'Plain subject', 'Plain body', '{}', 'sent', 0, "
                          ":now)"), {"t": tutor_id, "now": utcnow()})
    upgrade(db_url)
    engine.dispose()
    stored = _raw(engine, "SELECT body FROM tutor_notes") + _raw(engine, "SELECT subject, body FROM outbox")
    assert "Plain" not in repr(stored) and all(v.startswith("v1.") for row in stored for v in row)
    with session_scope(engine) as db:
        assert [v.note.body for v in list_notes(db, tutor_id)[0]] == ["Plain note about pay"]
        assert (db.get(OutboxMessage, "m-old").subject, db.get(OutboxMessage, "m-old").body) == ("Plain subject",
                                                                                               "Plain body")
    downgrade(db_url, "0013")
    engine.dispose()
    assert _raw(engine, "SELECT subject, body FROM outbox") == [("Plain subject", "Plain body")]
    assert _raw(engine, "SELECT body FROM tutor_notes") == [("Plain note about pay",)]
    upgrade(db_url)
    engine.dispose()
