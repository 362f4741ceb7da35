"""Tokens hashed at rest, and sealing of the few secrets the server must read back (identity keys)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

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


class KeySealer:
    """AES-GCM encryption of per-subscriber identity keys under a key derived from NAHBAR_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        self._aead = AESGCM(hmac.digest(secret_key.encode(), b"nahbar identity-key sealing v1", "sha256"))

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], context)
