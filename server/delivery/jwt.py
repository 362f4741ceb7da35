"""Compact JWS signing (ES256 for VAPID and APNs, RS256 for Google's OAuth assertion), on `cryptography`."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def sign_es256(key: ec.EllipticCurvePrivateKey, claims: dict[str, Any], **header: str) -> str:
    """A JWT signed with ECDSA P-256 / SHA-256, the signature as raw r||s (RFC 7518 3.4)."""
    signing_input = f"{_segment({'alg': 'ES256', 'typ': 'JWT', **header})}.{_segment(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def sign_rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], **header: str) -> str:
    """A JWT signed with RSASSA-PKCS1-v1_5 / SHA-256."""
    signing_input = f"{_segment({'alg': 'RS256', 'typ': 'JWT', **header})}.{_segment(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))}"
