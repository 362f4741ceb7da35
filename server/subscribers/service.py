"""Opt-in: a pseudonymous subscriber with a sealed identity key and a consent record."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from mobile_api.eid import KEY_LENGTH
from server.core.errors import NahbarError
from server.core.security import KeySealer, hash_token, new_token
from server.presence.eid_index import Keyed
from server.subscribers.consent import KNOWN_CONSENT_VERSIONS
from server.subscribers.models import ConsentRecord, Subscriber


class UnknownConsentVersion(NahbarError):
    status = 422
    code = "unknown_consent_version"


@dataclass(frozen=True, slots=True)
class OptedIn:
    subscriber: Subscriber
    device_token: str
    keyed: Keyed


def opt_in(
    session: Session,
    sealer: KeySealer,
    *,
    scopes: list[str],
    language: str,
    consent_version: str,
    rotation_exponent: int,
    now: datetime,
) -> OptedIn:
    """Create the subscriber and its consent record; the caller adds `keyed` to the EID index on commit."""
    if consent_version not in KNOWN_CONSENT_VERSIONS:
        known = ", ".join(sorted(KNOWN_CONSENT_VERSIONS))
        raise UnknownConsentVersion(f"Consent text version {consent_version!r} is unknown; known: {known}.")
    subscriber_id = uuid.uuid4()
    identity_key = secrets.token_bytes(KEY_LENGTH)
    token = new_token("ndv")
    subscriber = Subscriber(
        id=subscriber_id,
        device_token_hash=hash_token(token),
        identity_key_sealed=sealer.seal(identity_key, subscriber_id.bytes),
        rotation_exponent=rotation_exponent,
        scopes=sorted(set(scopes)),
        language=language,
        preferences={},
        created_at=now,
    )
    session.add(subscriber)
    session.flush()  # no ORM relationship orders the inserts; the consent row references this one
    session.add(
        ConsentRecord(
            subscriber_id=subscriber_id,
            text_version=consent_version,
            scopes=sorted(set(scopes)),
            language=language,
            given_at=now,
        )
    )
    session.flush()
    return OptedIn(subscriber, token, Keyed(subscriber_id, identity_key, rotation_exponent))
