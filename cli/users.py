"""`tutorpulse users create|list|set-role|set-password|deactivate|activate`: accounts from the command line.

The first admin of an install is made here (the API and pages need an admin to make accounts). Passwords are
read with getpass (twice, to catch a typo), from stdin with --password-stdin (one line, for scripts), or made
up with --generate and shown once; never taken as an argument, where the shell history and `ps` would keep it.
The account operations are the admin API's (domain.users.accounts), so the CLI refuses and audits the same way.

Exit codes: 0 done, 2 bad input (the message names the field).
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.config import Settings, get_settings
from domain.users.models import Role

ROLES = [r.value for r in Role]


class Refused(Exception):
    """Bad input the command names the field of; exit code 2."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="accounts: create, list, change role, set password, deactivate")
    cmds = users.add_subparsers(dest="users_command", required=True)

    create = cmds.add_parser("create", help="create an account (prompts for its password)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    _links(create)
    _password_source(create)
    create.set_defaults(func=create_command)

    listing = cmds.add_parser("list", help="list accounts (id, role, name, email, active, linked record)")
    listing.add_argument("--role", choices=ROLES, help="only accounts with this role")
    listing.set_defaults(func=list_command)

    role = cmds.add_parser("set-role", help="change an account's role (its sessions and tokens end)")
    role.add_argument("user_id")
    role.add_argument("role", choices=ROLES)
    _links(role)
    role.set_defaults(func=set_role_command)

    password = cmds.add_parser("set-password", help="set an account's password (its sessions and tokens end)")
    password.add_argument("user_id")
    _password_source(password)
    password.set_defaults(func=set_password_command)

    for name, active, text in (("deactivate", False, "refuse the account's sign-in and end its sessions and tokens"),
                               ("activate", True, "let a deactivated account sign in again")):
        cmd = cmds.add_parser(name, help=text)
        cmd.add_argument("user_id")
        cmd.set_defaults(func=set_active_command, active=active)


def _links(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--tutor-id", help="the tutor record a tutor account reads (required for role tutor)")
    group.add_argument("--student-id", help="the student record a student account reads (required for role student)")


def _password_source(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    group.add_argument("--generate", action="store_true", help="make up a strong password and print it once")


def _who() -> str:
    try:
        return getpass.getuser()[:40]
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated)."""
    from domain.users.demo import new_password

    if args.generate:
        return new_password(), True
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise Refused("password", "nothing on stdin (--password-stdin reads one line)")
        return line, False
    if not sys.stdin.isatty():
        raise Refused("password", "stdin is not a terminal, so there is nobody to prompt: pipe the password in with "
                                  "--password-stdin, or use --generate")
    first = getpass.getpass("Password (12+ characters): ")
    if getpass.getpass("Same password again: ") != first:
        raise Refused("password", "the two entries differ")
    return first, False


def _run(settings: Settings | None, change) -> int:  # noqa: ANN001 - a callable(db) -> None
    from core.db import get_engine, session_scope
    from core.migrate import upgrade
    from domain.users.accounts import LastAdmin
    from domain.users.service import AccountError

    settings = settings or get_settings()
    upgrade(settings.database_url)
    try:
        with session_scope(get_engine(settings.database_url)) as db:
            change(db)
    except AccountError as exc:
        print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
        return 2
    except LastAdmin as exc:
        print(f"error: role: {exc}", file=sys.stderr)
        return 2
    return 0


def _actor() -> dict:
    return {"by": "system:cli", "source": f"cli:{_who()}"}


def _with_password(args: argparse.Namespace, settings: Settings | None, act) -> int:  # noqa: ANN001
    """Reads the password (prompt, stdin or generated), then runs ``act(db, password)``; a generated one is shown
    once, after the change committed."""
    try:
        password, generated = _read_password(args)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def change(db) -> None:  # noqa: ANN001
        act(db, password)
        if generated:
            print(f"password: {password}\n(shown once: only its hash is stored)")

    return _run(settings, change)


def create_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from domain.users.accounts import create_account

    def act(db, password: str | None) -> None:  # noqa: ANN001
        user = create_account(db, **_actor(), email=args.email, name=args.name, role=args.role, password=password,
                              tutor_id=args.tutor_id, student_id=args.student_id)
        print(f"created {user.user_id} ({user.role}) {user.email}")

    return _with_password(args, settings, act)


def list_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from domain.users.service import list_users

    def change(db) -> None:  # noqa: ANN001
        rows = [(u.user_id, u.role, u.name, u.email, "yes" if u.is_active else "no",
                 f"tutor {u.tutor_id}" if u.tutor_id else f"student {u.student_id}" if u.student_id else "—")
                for u in list_users(db, args.role)]
        print(table(("id", "role", "name", "email", "active", "linked record"), rows))
        print(f"{len(rows)} account{'' if len(rows) == 1 else 's'}")

    return _run(settings, change)


def set_role_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from domain.users.accounts import change_role

    def change(db) -> None:  # noqa: ANN001
        user = change_role(db, args.user_id, **_actor(), role=args.role, tutor_id=args.tutor_id,
                           student_id=args.student_id)
        print(f"{user.user_id} is now {user.role}; its sessions and tokens ended")

    return _run(settings, change)


def set_password_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from domain.users.accounts import change_password

    def act(db, password: str) -> None:  # noqa: ANN001
        user = change_password(db, args.user_id, **_actor(), password=password)
        print(f"password of {user.user_id} set; its sessions and tokens ended")

    return _with_password(args, settings, act)


def set_active_command(args: argparse.Namespace, *, settings: Settings | None = None) -> int:
    from domain.users.accounts import change_active

    def change(db) -> None:  # noqa: ANN001
        user = change_active(db, args.user_id, **_actor(), active=args.active)
        print(f"{user.user_id} {'activated' if user.is_active else 'deactivated; its sessions and tokens ended'}")

    return _run(settings, change)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
             for row in (headers, tuple("-" * w for w in widths), *rows)]
    return "\n".join(lines)


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read (0600), replacing any older one whatever its mode was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover temporary file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def seed_demo(settings: Settings) -> Path:
    """The demo's accounts (domain.users.demo), their fresh passwords printed and kept in var/demo-accounts.txt."""
    from core.db import get_engine, session_scope
    from domain.users.demo import seed_demo_accounts

    with session_scope(get_engine(settings.database_url)) as db:
        accounts, notes = seed_demo_accounts(db)
    rows = [(a.role, a.email, a.password, a.linked or "", "" if a.active else "deactivated") for a in accounts]
    text = table(("role", "email", "password", "linked record", "note"), rows)
    path = settings.var_dir / "demo-accounts.txt"
    write_private(path, "TutorPulse demo accounts (new passwords on every `tutorpulse demo` run)\n\n" + text + "\n")
    print(f"demo accounts (sign in at /login; new passwords every run, also in {path}, readable by you only):")
    print(text)
    for note in notes:
        print(f"note: {note}")
    return path
