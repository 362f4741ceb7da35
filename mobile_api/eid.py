"""Eddystone-EID, exactly as google/eddystone eid-computation.md: what phones implement to advertise.

TK  = AES-128(IK, 11 x 00 | FF | 00 00 | counter >> 16 as 2 bytes big-endian)
EID = AES-128(TK, 11 x 00 | K | counter with its low K bits cleared, 4 bytes big-endian)[:8]
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

EID_LENGTH: Final = 8
KEY_LENGTH: Final = 16
MAX_EXPONENT: Final = 15
EPOCH_BITS: Final = 16  # the temporary key changes every 2^16 seconds

_ECB: Final = modes.ECB()  # noqa: S305 - one block per key, as the spec computes


def aes_block(key: bytes | bytearray, block: bytes) -> bytes:
    """AES-128 of one 16-byte block: the only primitive the scheme uses."""
    return Cipher(algorithms.AES(key), _ECB).encryptor().update(block)


def _check(identity_key: bytes | None, k: int | None) -> None:
    if identity_key is not None and len(identity_key) != KEY_LENGTH:
        raise ValueError(f"identity key must be {KEY_LENGTH} bytes, got {len(identity_key)}")
    if k is not None and not 0 <= k <= MAX_EXPONENT:
        raise ValueError(f"rotation exponent k must be 0..{MAX_EXPONENT}, got {k}")


def temporary_key_input(counter: int) -> bytes:
    """The block the identity key encrypts to give the temporary key of `counter`'s 2^16-second epoch."""
    return bytes(11) + b"\xff\x00\x00" + ((counter & 0xFFFFFFFF) >> EPOCH_BITS).to_bytes(2, "big")


def eid_input(counter: int, k: int) -> bytes:
    """The block the temporary key encrypts to give the EID of `counter`'s window (k already checked)."""
    start = (counter & 0xFFFFFFFF) & ~((1 << k) - 1) & 0xFFFFFFFF
    return bytes(11) + bytes([k]) + start.to_bytes(4, "big")


def temporary_key(identity_key: bytes, counter: int) -> bytes:
    """The temporary key for the 2^16-second epoch that `counter` falls in."""
    _check(identity_key, None)  # AES would silently take a 24- or 32-byte key as AES-192/256
    return aes_block(identity_key, temporary_key_input(counter))


def eid(identity_key: bytes, counter: int, k: int) -> bytes:
    """The 8-byte ephemeral ID broadcast at `counter` (Unix seconds) with rotation every 2**k seconds."""
    _check(identity_key, k)
    tk = aes_block(identity_key, temporary_key_input(counter))
    return aes_block(tk, eid_input(counter, k))[:EID_LENGTH]


def window_start(counter: int, k: int) -> int:
    """The first second of the rotation window `counter` falls in."""
    _check(None, k)
    return (counter & 0xFFFFFFFF) & ~((1 << k) - 1) & 0xFFFFFFFF
