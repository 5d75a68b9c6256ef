"""The application's secrets: the signing key and the PII encryption keys.

Set them in production (SECRET_KEY, PII_KEY in the environment or .env): every API process and worker must share
them. Unset, the embedded install generates each once into var_dir/keys (mode 0600) so a demo restarted on the
same var/ still reads its own encrypted rows; losing that folder makes the names and emails in the database
unreadable, which is why production never relies on it.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.config import Settings, get_settings

log = logging.getLogger(__name__)
KEY_BYTES = 32


class KeyConfigError(ValueError):
    """A configured key is malformed; the message names the setting."""


def _decode(name: str, value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
    except (ValueError, TypeError):
        raise KeyConfigError(f"{name} is not base64: expected the urlsafe base64 of {KEY_BYTES} random bytes") from None
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{name} decodes to {len(raw)} bytes; it must be {KEY_BYTES} (e.g. python -c "
                        "\"import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\")")
    return raw


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _generated(var_dir: Path, name: str) -> bytes:
    folder = var_dir / "keys"
    path = folder / f"{name}.key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together agree on whichever key was written first.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_key())
            log.warning("generated %s into %s: set %s in production", name, path, name.upper())
    return _decode(str(path), path.read_text())


@dataclass(frozen=True)
class Keys:
    secret: bytes
    pii: bytes
    pii_previous: tuple[bytes, ...] = ()


def keys_for(settings: Settings) -> Keys:
    secret = (_decode("SECRET_KEY", settings.secret_key.get_secret_value()) if settings.secret_key
              else _generated(settings.var_dir, "secret_key"))
    pii = (_decode("PII_KEY", settings.pii_key.get_secret_value()) if settings.pii_key
           else _generated(settings.var_dir, "pii_key"))
    previous = ()
    if settings.pii_previous_keys:
        previous = tuple(_decode("PII_PREVIOUS_KEYS", k) for k in settings.pii_previous_keys.get_secret_value().split(",")
                         if k.strip())
    return Keys(secret=secret, pii=pii, pii_previous=previous)


@lru_cache
def process_keys() -> Keys:
    """The keys of this process's settings: column types have no request to take settings from."""
    return keys_for(get_settings())


def derive(key: bytes, purpose: str) -> bytes:
    """A sub-key per purpose, so the hash key for lookups is never the encryption key itself."""
    return hashlib.blake2b(purpose.encode(), key=key, digest_size=32).digest()
