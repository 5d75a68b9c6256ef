"""`tutorpulse users ...` and the demo's accounts, on SQLite and PostgreSQL: through cli.main.main as the console
script calls it (settings from DATABASE_URL), and once as a real subprocess for the no-terminal refusal."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from cli.main import main
from cli.users import seed_demo
from core.config import Settings, get_settings
from core.db import session_scope
from domain.audit.models import AuditLog
from domain.auth import service as auth_service
from domain.sessions.models import TutoringSession
from domain.users import demo as demo_accounts
from domain.users.models import User
from domain.users.service import DEMO_STAFF, by_email
from tests.factories import NOW, seed_people

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough passphrase"


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Runs `tutorpulse ARGS` in-process against the test database; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # not a terminal, like a pipe
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's refusals
            code = exc.code
        return code, out.getvalue(), err.getvalue()

    yield run
    get_settings.cache_clear()


def _signs_in(engine: Engine, email: str, password: str) -> bool:
    with session_scope(engine) as db:
        return auth_service.authenticate(db, email, password) is not None


def test_users_create_list_set_role_set_password_deactivate(cli, engine: Engine) -> None:  # noqa: ANN001
    seed_people(engine, tutors=2, students=1)
    code, out, _ = cli("users", "create", "--email", "ada@example.test", "--name", "Ada Admin", "--role", "admin",
                       "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0 and "created" in out and PASSWORD not in out
    assert _signs_in(engine, "ada@example.test", PASSWORD)

    code, out, _ = cli("users", "create", "--email", "tom@example.test", "--name", "Tom Tutor", "--role", "tutor",
                       "--tutor-id", "tutor_1", "--generate")
    assert code == 0
    generated = out.split("password: ", 1)[1].split()[0]
    assert len(generated) >= 16 and _signs_in(engine, "tom@example.test", generated)

    refusals = [
        (["--email", "x@example.test", "--name", "X", "--role", "tutor", "--generate"], "tutor_id"),
        (["--email", "x@example.test", "--name", "X", "--role", "tutor", "--tutor-id", "nobody", "--generate"],
         "tutor_id"),
        (["--email", "ADA@example.test", "--name", "X", "--role", "admin", "--generate"], "email"),
        (["--email", "x@example.test", "--name", "X", "--role", "service", "--password-stdin"], "password"),
        (["--email", "x@example.test", "--name", "X", "--role", "service"], "password"),  # no terminal to ask on
    ]
    for args, field in refusals:
        code, out, err = cli("users", "create", *args, stdin="short\n" if "--password-stdin" in args else "")
        assert code == 2 and f"error: {field}:" in err, (args, err)
    code, _, err = cli("users", "create", "--email", "x@example.test", "--name", "X", "--role", "wizard", "--generate")
    assert code == 2 and "--role" in err  # argparse names the option and the choices
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).select_from(User)).scalar_one() == 2  # refusals created nothing

    code, out, _ = cli("users", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["id", "role", "name", "email", "active", "linked", "record"]
    assert any("tom@example.test" in line and "tutor tutor_1" in line and " yes " in line for line in lines)
    assert "2 accounts" in out and "$argon2" not in out
    code, out, _ = cli("users", "list", "--role", "admin")
    assert "ada@example.test" in out and "tom@" not in out and "1 account" in out

    with session_scope(engine) as db:
        tom = by_email(db, "tom@example.test")
        token = auth_service.issue(db, tom, kind=auth_service.BEARER, minutes=60).token
    code, _, err = cli("users", "set-role", tom.user_id, "student")
    assert code == 2 and "error: student_id:" in err
    code, out, _ = cli("users", "set-role", tom.user_id, "tutor", "--tutor-id", "tutor_2")
    assert code == 0
    with session_scope(engine) as db:
        assert (db.get(User, tom.user_id).tutor_id, auth_service.resolve(db, token, kind="bearer")) == ("tutor_2", None)
    assert cli("users", "set-role", "u_nobody", "admin")[0] == 2
    code, _, err = cli("users", "set-role", _admin_id(engine), "service")
    assert code == 2 and "only active admin" in err

    code, out, _ = cli("users", "set-password", tom.user_id, "--password-stdin", stdin="another long passphrase\n")
    assert code == 0 and not _signs_in(engine, "tom@example.test", generated)
    assert _signs_in(engine, "tom@example.test", "another long passphrase")
    code, out, _ = cli("users", "deactivate", tom.user_id)
    assert code == 0 and not _signs_in(engine, "tom@example.test", "another long passphrase")
    assert " no " in next(line for line in cli("users", "list")[1].splitlines() if "tom@" in line)

    with session_scope(engine) as db:
        rows = db.execute(select(AuditLog).where(AuditLog.resource_type == "user")
                          .order_by(AuditLog.audit_id)).scalars().all()
    assert [r.details["change"] for r in rows] == ["create", "create", "role", "password", "deactivate"]
    assert {r.actor for r in rows} == {"system:cli"} and all(r.source.startswith("cli:") for r in rows)
    assert not any(PASSWORD in str(r.details) or generated in str(r.details) for r in rows)


def _admin_id(engine: Engine) -> str:
    with session_scope(engine) as db:
        return by_email(db, "ada@example.test").user_id


def test_console_script_refuses_to_prompt_without_a_terminal(db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_url}
    done = subprocess.run([sys.executable, "-m", "cli.main", "users", "create", "--email", "p@example.test", "--name",
                           "P", "--role", "service"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--password-stdin" in done.stderr and "not a terminal" in done.stderr
    piped = subprocess.run([sys.executable, "-m", "cli.main", "users", "create", "--email", "p@example.test", "--name",
                            "P", "--role", "service", "--password-stdin"], cwd=ROOT, env=env, input=PASSWORD + "\n",
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert PASSWORD not in piped.stdout + piped.stderr  # nor in the log lines the command prints
    listed = subprocess.run([sys.executable, "-m", "cli.main", "users", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert "p@example.test" in listed.stdout and "service" in listed.stdout


def test_demo_accounts_one_per_role_idempotent_with_fresh_passwords(engine: Engine, settings: Settings,
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    seed_people(engine, tutors=3, students=3, onboarded=date(2026, 1, 5))
    with session_scope(engine) as db:  # tutor_1's latest session is with student_3
        for n, student in enumerate(("student_2", "student_3"), start=1):
            db.add(TutoringSession(session_id=f"s{n}", tutor_id="tutor_1", student_id=student, session_number=n,
                                   scheduled_start=NOW - timedelta(days=3 - n), duration_minutes=60,
                                   subject="Mathematics"))
    settings = settings.model_copy(update={"var_dir": tmp_path / "var"})
    listing = settings.var_dir / "demo-accounts.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text("old\n")
    listing.chmod(0o644)

    path = seed_demo(settings)
    first = _passwords(capsys.readouterr().out)
    assert path == listing and stat.S_IMODE(path.stat().st_mode) == 0o600
    roles = {"ops_manager", "people_ops", "admin", "tutor", "student", "service"}
    with session_scope(engine) as db:
        users = {u.user_id: u for u in db.execute(select(User)).scalars()}
        issued = auth_service.issue(db, users[demo_accounts.DEMO_TUTOR_ID], kind="bearer", minutes=60).token
    assert {u.role for u in users.values()} == roles and len(users) == len(DEMO_STAFF) + 3
    assert (users[demo_accounts.DEMO_TUTOR_ID].tutor_id, users[demo_accounts.DEMO_STUDENT_ID].student_id) == (
        "tutor_1", "student_3")
    assert users[demo_accounts.DEMO_TUTOR_ID].name == "Tutor 1"  # the account is the tutor's own
    assert set(first) == {u.email for u in users.values()}
    for email, password in first.items():
        assert _signs_in(engine, email, password), email
        assert password in path.read_text()

    seed_demo(settings)  # the demo run again: same accounts, new passwords
    second = _passwords(capsys.readouterr().out)
    with session_scope(engine) as db:
        assert {u.user_id for u in db.execute(select(User)).scalars()} == set(users)
        assert auth_service.resolve(db, issued, kind="bearer") is None  # the old password's token ended too
    for email in first:
        assert second[email] != first[email]
        assert not _signs_in(engine, email, first[email]) and _signs_in(engine, email, second[email])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and first[next(iter(first))] not in path.read_text()


def test_demo_accounts_before_the_world_exists(engine: Engine) -> None:
    with session_scope(engine) as db:
        accounts, notes = demo_accounts.seed_demo_accounts(db)
    assert {a.role for a in accounts} == {"ops_manager", "people_ops", "admin", "service"}
    assert any("no tutor" in n for n in notes) and any("no student" in n for n in notes)


def _passwords(printed: str) -> dict[str, str]:
    """email -> password from the table seed_demo prints (role, email, password, ...)."""
    rows = [line.split() for line in printed.splitlines() if "@" in line and not line.startswith("demo accounts")]
    return {cells[1]: cells[2] for cells in rows}
