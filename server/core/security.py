"""Tokens hashed at rest, and sealing of the few secrets the server must read back (identity keys)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_token(prefix: str) -> str:
    """A 256-bit random bearer token with a readable prefix (`ngw_`, `ndv_`, ...)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """SHA-256 suffices for high-entropy random tokens; they are never stored in the clear."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_enrolment_code() -> str:
    """A one-time code short enough to type on a Pi console: 4-4-4 base32 letters (60 bits)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "")


_passwords = PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) parameters
# Verified against when the e-mail is unknown, so that a miss takes as long as a wrong password.
_DUMMY_HASH = _passwords.hash("nahbar-timing-equaliser")


def hash_password(password: str) -> str:
    """An Argon2id hash (salted, parameters embedded) for an admin's password."""
    return _passwords.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash costs the same time and is False."""
    try:
        return _passwords.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _passwords.check_needs_rehash(password_hash)


def same_token(token: str, token_hash: str | None) -> bool:
    """Constant-time check of a presented token against its stored hash."""
    return token_hash is not None and hmac.compare_digest(hash_token(token), token_hash)


class KeySealer:
    """AES-GCM encryption of per-subscriber identity keys under a key derived from NAHBAR_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        self._aead = AESGCM(hmac.digest(secret_key.encode(), b"nahbar identity-key sealing v1", "sha256"))

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], context)
        except InvalidTag:
            raise SealedWithAnotherKey(
                "NAHBAR_SECRET_KEY does not open the identity keys stored in this database: they were sealed "
                "with another key. Start the server with the key this database was used with (a restored "
                "backup needs the key of the server it came from); without it no opted-in phone can be "
                'recognised. See docs/deployment.md, "Secrets".'
            ) from None


class SealedWithAnotherKey(ValueError):
    """A sealed secret that NAHBAR_SECRET_KEY cannot open: the key is not the one it was sealed with."""


def pseudonym(secret_key: str, organisation_id: int, subscriber_id: uuid.UUID) -> str:
    """The alias one organisation's admins know a person by: stable within that organisation, and another one
    in every other, so that two charities cannot match their lists to follow a person between them."""
    key = hmac.digest(secret_key.encode(), b"nahbar admin pseudonym v2", "sha256")
    message = (
        organisation_id.to_bytes(8, "big", signed=True) + subscriber_id.bytes
    )  # fixed widths: unambiguous
    return "p_" + hmac.digest(key, message, "sha256").hex()[:20]
