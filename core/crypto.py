"""PII at rest: AES-256-GCM column encryption and a keyed hash for the columns the product looks rows up by.

A stored value reads ``v1.<key id>.<base64(nonce | ciphertext | tag)>``. The key id (first 8 hex of the key's
hash) lets a rotated-out key still decrypt while rows are re-encrypted. Encryption uses a random nonce, so equal
plaintexts differ in the table: equality lookups go through keyed_hash, never through the ciphertext.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

from core.keys import Keys, derive, process_keys

PREFIX = "v1"
NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A stored value cannot be decrypted with the configured keys (wrong PII_KEY, or tampered data)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def encrypt(plaintext: str, keys: Keys | None = None) -> str:
    keys = keys or process_keys()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keys.pii).encrypt(nonce, plaintext.encode("utf-8"), PREFIX.encode())
    return f"{PREFIX}.{key_id(keys.pii)}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(stored: str, keys: Keys | None = None) -> str:
    keys = keys or process_keys()
    try:
        prefix, kid, body = stored.split(".", 2)
    except ValueError:
        raise DecryptionError("value is not an encrypted PII field (no v1.<key id>. prefix)") from None
    if prefix != PREFIX:
        raise DecryptionError(f"unknown PII encryption format {prefix!r}")
    key = next((k for k in (keys.pii, *keys.pii_previous) if key_id(k) == kid), None)
    if key is None:
        raise DecryptionError(f"PII encrypted with key {kid}, which is neither PII_KEY nor in PII_PREVIOUS_KEYS")
    raw = base64.urlsafe_b64decode(body)
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], PREFIX.encode()).decode("utf-8")
    except InvalidTag:
        raise DecryptionError(f"PII value under key {kid} fails authentication (tampered or truncated)") from None


def keyed_hash(value: str, keys: Keys | None = None) -> str:
    """HMAC-SHA256 of the normalised value: stable, so it can be indexed and compared, and useless without the key."""
    keys = keys or process_keys()
    return hmac.new(derive(keys.pii, "lookup"), value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def ciphertext_length(plaintext_chars: int) -> int:
    """Column width for a plaintext limit: 4 bytes per character at worst, then base64 and the prefix."""
    raw = NONCE_BYTES + 4 * plaintext_chars + 16
    return len(PREFIX) + 1 + 8 + 1 + 4 * ((raw + 2) // 3)


class EncryptedString(TypeDecorator):
    """A string column whose stored form is AES-GCM ciphertext; the application sees plaintext."""

    impl = String
    cache_ok = True

    def __init__(self, max_chars: int):
        super().__init__(ciphertext_length(max_chars))
        self.max_chars = max_chars

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201
        if value is None:
            return None
        if len(value) > self.max_chars:
            raise ValueError(f"value longer than {self.max_chars} characters")
        return encrypt(value)

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        return None if value is None else decrypt(value)


def hash_default(source_column: str):  # noqa: ANN201
    """A column default computing keyed_hash of another column of the same insert (ORM and bulk Core alike)."""
    def _default(context):  # noqa: ANN001, ANN202
        value = context.get_current_parameters().get(source_column)
        return None if value is None else keyed_hash(value)
    return _default
