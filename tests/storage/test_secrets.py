"""KeyVault: Fernet at rest, keyed case-insensitive push-key hash, clear errors that never quote a secret."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import SecretStr

from bot.storage.secrets import (
    InvalidSecretKeyError,
    KeyDecryptionError,
    KeyVault,
    MissingSecretKeyError,
    generate_secret_key,
)

API_KEY = "a1B2c3D4-e5F6-7890-ABCD-ef0123456789"


@pytest.mark.parametrize("missing", [None, "", "   \n", SecretStr("")])
def test_without_a_key_nothing_can_be_stored_and_the_error_says_how_to_fix_it(
    missing: str | SecretStr | None,
) -> None:
    vault = KeyVault(missing)
    assert not vault.has_key
    for action in (vault.require_key, lambda: vault.encrypt(API_KEY), lambda: vault.push_key_hash(API_KEY)):
        with pytest.raises(MissingSecretKeyError, match="python -m bot generate-secret-key"):
            action()


@pytest.mark.parametrize("bad", ["not-a-key", "short==", "x" * 44, generate_secret_key()[:-2]])
def test_invalid_key_is_a_clear_error_that_does_not_quote_it(bad: str) -> None:
    with pytest.raises(InvalidSecretKeyError) as caught:
        KeyVault(bad)
    assert bad not in str(caught.value)
    assert "generate-secret-key" in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_encrypt_round_trips_and_hides_the_key() -> None:
    secret = generate_secret_key()
    vault = KeyVault(secret)
    token = vault.encrypt(API_KEY)
    assert API_KEY.encode() not in token
    assert API_KEY.upper().encode() not in token
    assert vault.decrypt(token) == API_KEY
    # Surrounding whitespace from a .env copy-paste is tolerated; SecretStr is accepted too.
    assert KeyVault(SecretStr(f"  {secret}\n")).decrypt(token) == API_KEY
    assert secret not in repr(vault)


def test_a_different_secret_key_cannot_decrypt() -> None:
    token = KeyVault(generate_secret_key()).encrypt(API_KEY)
    with pytest.raises(KeyDecryptionError, match="BOT_SECRET_KEY has changed") as caught:
        KeyVault(generate_secret_key()).decrypt(token)
    assert caught.value.__suppress_context__


def test_push_key_hash_is_case_and_whitespace_insensitive() -> None:
    vault = KeyVault(generate_secret_key())
    expected = vault.push_key_hash(API_KEY)
    assert vault.push_key_hash(API_KEY.lower()) == expected
    assert vault.push_key_hash(f"  {API_KEY.upper()}\n") == expected
    assert vault.push_key_hash(SecretStr(API_KEY)) == expected
    assert vault.push_key_hash(API_KEY + "0") != expected
    assert len(expected) == 64 and int(expected, 16) >= 0


@pytest.mark.parametrize("key", ["\ud800", API_KEY + "\udcff", "\udcff" + API_KEY, "\ud83d"])
def test_push_key_hash_is_defined_for_lone_surrogates_and_matches_no_real_key(key: str) -> None:
    """JSON may carry "\\ud800" (valid JSON, not valid UTF-8): hashing it must not raise, only miss."""
    vault = KeyVault(generate_secret_key())
    assert len(vault.push_key_hash(key)) == 64
    assert vault.push_key_hash(key) not in {vault.push_key_hash(API_KEY), vault.push_key_hash("")}
    assert vault.push_key_hash(key) != vault.push_key_hash(key.encode("utf-8", "replace").decode())


def test_push_key_hash_is_keyed_by_the_secret_key() -> None:
    first = KeyVault(generate_secret_key()).push_key_hash(API_KEY)
    second = KeyVault(generate_secret_key()).push_key_hash(API_KEY)
    assert first != second
    # Not a plain digest either, which anyone could recompute from a guessed key.
    plain = API_KEY.upper().encode()
    assert first not in {hashlib.sha256(plain).hexdigest(), hashlib.sha256(API_KEY.encode()).hexdigest()}


def test_push_key_hash_is_stable_for_the_same_secret_key() -> None:
    secret = generate_secret_key()
    assert KeyVault(secret).push_key_hash(API_KEY) == KeyVault(secret).push_key_hash(API_KEY)


def test_generated_keys_are_valid_and_distinct() -> None:
    keys = {generate_secret_key() for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert KeyVault(key).has_key
