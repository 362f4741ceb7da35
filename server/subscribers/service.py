"""The subscriber's own data: opt-in, preferences (a scope change is a new consent), exclusions, push
channels, and withdrawal with erasure in one step."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from mobile_api.eid import KEY_LENGTH
from server.core.addresses import why_not_public_host
from server.core.const import ChannelKind
from server.core.errors import Conflict, NahbarError, NotFound
from server.core.security import KeySealer, hash_token, new_token
from server.presence.eid_index import Keyed
from server.subscribers import repository
from server.subscribers.consent import CURRENT_CONSENT_VERSION, KNOWN_CONSENT_VERSIONS
from server.subscribers.models import ConsentRecord, Exclusion, PushChannel, Subscriber

# Enough for a phone, a tablet and a browser or two; more is a client that forgets to reuse its channel.
MAX_PUSH_CHANNELS: Final = 10


class UnknownConsentVersion(NahbarError):
    status = 422
    code = "unknown_consent_version"


class TooManyPushChannels(Conflict):
    code = "too_many_push_channels"


class ChannelNotEnabled(Conflict):
    code = "channel_not_enabled"


class PushEndpointNotPublic(NahbarError):
    status = 422
    code = "push_endpoint_not_public"


CHANNEL_NAMES: Final = {
    ChannelKind.WEBPUSH: "Web Push",
    ChannelKind.FCM: "FCM (Firebase Cloud Messaging)",
    ChannelKind.APNS: "APNs (Apple Push Notification service)",
}


def _check_push_channel(
    kind: str, endpoint: str, offered: Collection[str], allow_private_hosts: bool
) -> None:
    """Refuse a channel this server cannot push to, and a Web Push endpoint that is not on the internet."""
    if kind not in offered:
        others = [CHANNEL_NAMES[ChannelKind(k)] for k in sorted(offered) if k in CHANNEL_NAMES]
        instead = f"use {' or '.join(others)}, or" if others else "use"
        raise ChannelNotEnabled(
            f"{CHANNEL_NAMES.get(ChannelKind(kind), kind)} is not enabled on this server, so it could not "
            f"deliver prompts there; {instead} the inbox (GET /mobile/v1/me/prompts). "
            "GET /mobile/v1/capabilities lists what this server offers.",
            extra={"enabled": sorted(offered)},
        )
    if kind == ChannelKind.WEBPUSH and not allow_private_hosts:
        reason = why_not_public_host(urlsplit(endpoint).hostname or "")
        if reason is not None:
            raise PushEndpointNotPublic(
                f"The Web Push endpoint's host must be a public internet address, and {reason}. "
                "Register the endpoint the browser's push service gave you."
            )


def _check_version(version: str) -> None:
    if version not in KNOWN_CONSENT_VERSIONS:
        known = ", ".join(sorted(KNOWN_CONSENT_VERSIONS))
        raise UnknownConsentVersion(f"Consent text version {version!r} is unknown; known: {known}.")


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
    _check_version(consent_version)
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


def update_preferences(
    session: Session, subscriber: Subscriber, changes: Mapping[str, Any], now: datetime
) -> None:
    """Apply the fields the phone sent. New scopes, or agreeing to another text version, is a new consent:
    the consent in force ends and a new record (text version, scopes, language, time) begins."""
    scopes = sorted(set(changes["scopes"])) if changes.get("scopes") else subscriber.scopes
    version = changes.get("consent_text_version")
    if version is not None:
        _check_version(version)
    if changes.get("language") is not None:
        subscriber.language = changes["language"]
    if scopes != subscriber.scopes or version is not None:
        repository.end_active_consents(session, subscriber.id, now)
        session.add(
            ConsentRecord(
                subscriber_id=subscriber.id,
                text_version=version or CURRENT_CONSENT_VERSION,
                scopes=scopes,
                language=subscriber.language,
                given_at=now,
            )
        )
        subscriber.scopes = scopes
    preferences = dict(subscriber.preferences or {})
    if "quiet_hours" in changes:
        preferences["quiet_hours"] = changes["quiet_hours"]
    if "caps" in changes:
        caps = changes["caps"] or {}
        preferences["caps"] = {name: value for name, value in caps.items() if value is not None}
    subscriber.preferences = {name: value for name, value in preferences.items() if value}
    subscriber.version += 1
    session.flush()


def add_exclusion(
    session: Session, subscriber_id: uuid.UUID, *, site_id: int | None, organisation_id: int | None
) -> tuple[Exclusion, bool]:
    """ "Not at this site" or "not from this charity"; returns the exclusion and whether it is new."""
    if site_id is not None and repository.site(session, site_id) is None:
        raise NotFound(f"No site has id {site_id}; use the site id the prompt or the app showed.")
    if organisation_id is not None and repository.organisation(session, organisation_id) is None:
        raise NotFound(f"No charity has id {organisation_id}; use the id the prompt or the app showed.")
    repository.lock(session, subscriber_id)
    found = repository.find_exclusion(
        session, subscriber_id, site_id=site_id, organisation_id=organisation_id
    )
    if found is not None:
        return found, False
    exclusion = Exclusion(subscriber_id=subscriber_id, site_id=site_id, organisation_id=organisation_id)
    session.add(exclusion)
    session.flush()
    return exclusion, True


def remove_exclusion(session: Session, subscriber_id: uuid.UUID, exclusion_id: int) -> None:
    exclusion = repository.own_exclusion(session, subscriber_id, exclusion_id)
    if exclusion is None:
        raise NotFound(
            f"You have no exclusion with id {exclusion_id}; list yours at /mobile/v1/me/exclusions."
        )
    session.delete(exclusion)
    session.flush()


def add_push_channel(
    session: Session,
    subscriber_id: uuid.UUID,
    kind: str,
    endpoint: str,
    keys: dict[str, Any],
    *,
    offered: Collection[str],
    allow_private_hosts: bool,
) -> tuple[PushChannel, bool]:
    """Register a push channel of a kind this server `offered`; the same endpoint again updates its keys and
    revives it (idempotent)."""
    _check_push_channel(kind, endpoint, offered, allow_private_hosts)
    repository.lock(session, subscriber_id)
    channel = repository.find_push_channel(session, subscriber_id, kind, endpoint)
    if channel is not None:
        channel.keys = keys
        channel.retired_at = None
        session.flush()
        return channel, False
    if repository.active_push_channels(session, subscriber_id) >= MAX_PUSH_CHANNELS:
        raise TooManyPushChannels(
            f"At most {MAX_PUSH_CHANNELS} push channels per subscriber; delete old ones first "
            "(GET /mobile/v1/me/push-channels lists them)."
        )
    channel = PushChannel(subscriber_id=subscriber_id, kind=kind, endpoint=endpoint, keys=keys)
    session.add(channel)
    session.flush()
    return channel, True


def remove_push_channel(session: Session, subscriber_id: uuid.UUID, channel_id: int) -> None:
    channel = repository.own_push_channel(session, subscriber_id, channel_id)
    if channel is None:
        raise NotFound(
            f"You have no push channel with id {channel_id}; list yours at /mobile/v1/me/push-channels."
        )
    session.delete(channel)
    session.flush()


def withdraw_and_erase(session: Session, subscriber_id: uuid.UUID, now: datetime) -> None:
    """Withdraw consent (Art. 7(3)) and erase (Art. 17) in one step; the caller has already taken the
    subscriber out of the EID index. Only the unlinked consent records stay, as proof of the withdrawal."""
    repository.erase(session, subscriber_id, now)
