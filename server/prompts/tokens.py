"""Secrets derived per prompt: the landing page's capability token and the push collapse id."""

from __future__ import annotations

import hmac
import uuid

from server.delivery.jwt import b64url

# Session.info keys through which the running app hands the prompts domain its secret and outbox wake-up.
SECRET_INFO: str = "nahbar.secret_key"
WAKE_INFO: str = "nahbar.outbox_wake"


def _key(secret_key: str, purpose: bytes) -> bytes:
    return hmac.digest(secret_key.encode(), b"nahbar " + purpose + b" v1", "sha256")


def landing_token(secret_key: str, decision_id: int) -> str:
    """256 bits only the server can compute; the database keeps its SHA-256 alone (landing_token_hash).
    Derived rather than stored, so the sender (any worker, after any restart) can put it into the push."""
    return b64url(hmac.digest(_key(secret_key, b"landing token"), str(decision_id).encode(), "sha256"))


def collapse_id(secret_key: str, subscriber_id: uuid.UUID | None, campaign_id: int | None) -> str:
    """Web Push Topic / APNs collapse id / FCM collapse key: one per person and campaign, so a re-send (after
    a crash between send and commit) or a newer prompt replaces the older one. Opaque to push services;
    32 characters of the URL-safe alphabet, as RFC 8030's Topic allows."""
    raw = f"{subscriber_id}|{campaign_id}".encode()
    return b64url(hmac.digest(_key(secret_key, b"push topic"), raw, "sha256"))[:32]
