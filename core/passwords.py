"""Password hashing: argon2id through argon2-cffi; its cost comes from the settings (argon2-cffi's recommended
parameters by default; the test suite lowers them, since hundreds of its accounts need no brute-force resistance)."""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.config import get_settings

MIN_LENGTH = 12


@lru_cache
def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib)


@lru_cache
def _dummy() -> str:
    # Verified against when the email is unknown, so a missing account costs the same time as a wrong password.
    return _hasher().hash("tutorpulse-no-such-user")


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_LENGTH} characters")
    if password.strip() != password or not password.strip():
        raise WeakPassword("password must not start or end with whitespace")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher().verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)
