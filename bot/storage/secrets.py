"""Encryption at rest for CAD API keys, and the keyed hash that finds a guild from a push event's key.

Both are derived from ``BOT_SECRET_KEY`` (a Fernet key). A database copied without that key reveals neither
the API keys nor anything that could be brute-forced back into one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

GENERATE_COMMAND = "python -m bot generate-secret-key"

# Changing this label changes every stored push-key hash, so it is versioned rather than edited.
_PUSH_HASH_CONTEXT = b"sonoran-dispatch-bot/push-key-hash/v1"


class SecretKeyError(Exception):
    """BOT_SECRET_KEY is missing, malformed, or does not match what the data was stored with."""


class MissingSecretKeyError(SecretKeyError):
    def __init__(self) -> None:
        super().__init__(
            "BOT_SECRET_KEY is not set, so CAD API keys cannot be stored or read; "
            f"generate one with `{GENERATE_COMMAND}` and put BOT_SECRET_KEY=<key> in .env"
        )


class InvalidSecretKeyError(SecretKeyError):
    def __init__(self) -> None:
        # The offending value is deliberately not quoted: it is a secret, even when it is a broken one.
        super().__init__(
            "BOT_SECRET_KEY is not a valid key (expected 44 characters of url-safe base64); "
            f"generate one with `{GENERATE_COMMAND}`"
        )


class KeyDecryptionError(SecretKeyError):
    def __init__(self) -> None:
        super().__init__(
            "a stored CAD API key cannot be decrypted: BOT_SECRET_KEY has changed since it was saved; "
            "restore the old BOT_SECRET_KEY or enter the API key again with /setup"
        )


def generate_secret_key() -> str:
    """A fresh random key suitable for BOT_SECRET_KEY."""
    return Fernet.generate_key().decode("ascii")


def normalise_push_key(api_key: str) -> str:
    """The form FiveM compares push keys in: surrounding whitespace removed, upper-cased."""
    return api_key.strip().upper()


class KeyVault:
    """Encrypts and hashes CAD API keys with BOT_SECRET_KEY; usable without a key until a key is needed."""

    __slots__ = ("_fernet", "_hash_key")

    def __init__(self, secret_key: str | SecretStr | None) -> None:
        raw = secret_key.get_secret_value() if isinstance(secret_key, SecretStr) else secret_key
        raw = (raw or "").strip()
        self._fernet: Fernet | None = None
        self._hash_key: bytes | None = None
        if not raw:
            return
        try:
            self._fernet = Fernet(raw)
        except ValueError:  # binascii.Error is a ValueError too
            raise InvalidSecretKeyError() from None
        self._hash_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_PUSH_HASH_CONTEXT
        ).derive(base64.urlsafe_b64decode(raw))

    def __repr__(self) -> str:
        return f"KeyVault(secret_key={'set' if self.has_key else 'not set'})"

    @property
    def has_key(self) -> bool:
        return self._fernet is not None

    def require_key(self) -> None:
        """Raise :class:`MissingSecretKeyError` unless a key is configured (for failing before any work)."""
        if self._fernet is None:
            raise MissingSecretKeyError()

    def encrypt(self, plaintext: str) -> bytes:
        if self._fernet is None:
            raise MissingSecretKeyError()
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        if self._fernet is None:
            raise MissingSecretKeyError()
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise KeyDecryptionError() from None

    def push_key_hash(self, api_key: str | SecretStr) -> str:
        """Keyed hash (HMAC-SHA256, hex) of the key in FiveM's case-insensitive form.

        Stored next to each guild so an incoming push event's key is matched by an index lookup,
        without decrypting any row. Defined for every string: a key from a push event's JSON may hold a lone
        surrogate (``"\\ud800"`` is valid JSON but not UTF-8), which hashes like any other wrong key
        (``surrogatepass`` leaves valid text, and so every stored hash, unchanged).
        """
        if self._hash_key is None:
            raise MissingSecretKeyError()
        plain = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        message = normalise_push_key(plain).encode("utf-8", "surrogatepass")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()
