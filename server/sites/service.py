"""Gateway lifecycle: one-time enrolment codes, tokens, the gateway's config and its heartbeats."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.core.errors import Conflict, Gone, Unauthorized
from server.core.security import hash_token, new_enrolment_code, new_token, normalise_code
from server.policy.decide import dwell_marks
from server.policy.repository import policy
from server.sites import repository
from server.sites.models import Gateway, Site
from server.sites.schemas import (
    DEFAULT_HEARTBEAT_S,
    MAX_WATCHED,
    GatewayConfigPublic,
    GatewayConfigUpdate,
    HeartbeatIn,
    TrackerSettings,
    WatchedBeaconPublic,
)
from server.tenancy.models import Organisation

log = logging.getLogger(__name__)

ENROLMENT_CODE_LIFETIME = timedelta(hours=72)


class UnknownEnrolmentCode(Unauthorized):
    code = "code_unknown"


class EnrolmentCodeUsed(Gone):
    code = "code_used"


class EnrolmentCodeExpired(Conflict):
    code = "code_expired"


@dataclass(frozen=True, slots=True)
class IssuedCode:
    gateway: Gateway
    code: str
    expires_at: datetime


def issue_enrolment_code(session: Session, site: Site, name: str, now: datetime) -> IssuedCode:
    """Create a gateway at `site` and a one-time code for it; only the code's hash is stored."""
    code = new_enrolment_code()
    gateway = Gateway(
        organisation_id=site.organisation_id,
        site_id=site.id,
        name=name,
        enrolment_code_hash=hash_token(normalise_code(code)),
        enrolment_expires_at=now + ENROLMENT_CODE_LIFETIME,
        config={},
    )
    session.add(gateway)
    session.flush()
    return IssuedCode(gateway, code, now + ENROLMENT_CODE_LIFETIME)


def reissue_enrolment_code(session: Session, gateway: Gateway, now: datetime) -> str:
    """A new code for an existing gateway (re-imaging a Pi); the old token stops working on enrolment."""
    code = new_enrolment_code()
    gateway.enrolment_code_hash = hash_token(normalise_code(code))
    gateway.enrolment_expires_at = now + ENROLMENT_CODE_LIFETIME
    gateway.revoked_at = None
    return code


def enrol(session: Session, code: str, now: datetime) -> tuple[Gateway, str]:
    """Exchange a one-time code for a gateway token; the code cannot be used again."""
    code_hash = hash_token(normalise_code(code))
    gateway = repository.gateway_by_code_hash(session, code_hash)
    if gateway is None:
        if repository.gateway_by_spent_code_hash(session, code_hash) is not None:
            raise EnrolmentCodeUsed(
                "This enrolment code was already used; a code works only once. If this gateway is not "
                "enrolled, ask the charity's admin for a new code."
            )
        raise UnknownEnrolmentCode(
            "Unknown enrolment code: check it for typos, or ask the charity's admin for a new one."
        )
    if gateway.enrolment_expires_at is None or gateway.enrolment_expires_at <= now:
        raise EnrolmentCodeExpired("This enrolment code has expired. Ask the charity's admin for a new one.")
    token = new_token("ngw")
    gateway.token_hash = hash_token(token)
    gateway.spent_code_hash = code_hash
    gateway.enrolment_code_hash = None
    gateway.enrolment_expires_at = None
    gateway.enrolled_at = now
    gateway.revoked_at = None
    return gateway, token


def public_site(session: Session, site_id: int) -> tuple[Site, Organisation] | None:
    """A site and its charity as anyone passing may know them (the window sign says as much); None for an
    unknown site or a suspended charity's."""
    return repository.public_site(session, site_id)


# --- The control channel: config with an ETag, heartbeats ---------------------------------------------

_U16 = re.compile(r"[0-9]{1,5}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


def _u16(text: str) -> int:
    if not _U16.fullmatch(text) or int(text) > 0xFFFF:
        raise ValueError(text)
    return int(text)


def _hex(text: str, size: int) -> str:
    text = text.replace("-", "")
    if len(text) != 2 * size or not _HEX.fullmatch(text):
        raise ValueError(text)
    return text


def watched_identifier(kind: str, identifier: str) -> str | None:
    """The key the agent's `frames.identifier` gives this beacon's frames; None when the row is malformed.

    Rows hold what an admin typed ("uuid/major/minor", "namespace/instance", any case, with or without the
    kind prefix); the agent compares strings, so they are rendered exactly as it renders decoded frames.
    """
    kind = kind.strip().lower()
    text = identifier.strip().lower().removeprefix(f"{kind}:")
    parts = text.split("/")
    try:
        if kind == "ibeacon" and len(parts) == 3:
            return f"ibeacon:{uuid.UUID(parts[0])}/{_u16(parts[1])}/{_u16(parts[2])}"
        if kind == "altbeacon" and len(parts) == 3:
            return f"altbeacon:{_hex(parts[0], 16)}/{_u16(parts[1])}/{_u16(parts[2])}"
        if kind == "eddystone_uid" and len(parts) == 2:
            return f"eddystone_uid:{_hex(parts[0], 10)}/{_hex(parts[1], 6)}"
    except ValueError:
        return None
    return None


def _sighting_key(identifier: str) -> str | None:
    kind, sep, rest = identifier.partition(":")
    return watched_identifier(kind, rest) if sep else None


def _overrides(gateway: Gateway) -> GatewayConfigUpdate:
    try:
        return GatewayConfigUpdate.model_validate(gateway.config or {})
    except ValidationError as exc:
        log.warning("gateway %s: config overrides ignored, they are invalid: %s", gateway.id, exc)
        return GatewayConfigUpdate()


def _tracker(gateway: Gateway, overrides: dict[str, Any]) -> TrackerSettings:
    """Defaults merged with the overrides; a bad override is dropped, never passed on to a gateway."""
    try:
        return TrackerSettings.model_validate(overrides)
    except ValidationError as exc:
        bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
        log.warning("gateway %s: tracker overrides %s ignored: %s", gateway.id, sorted(map(str, bad)), exc)
    try:
        return TrackerSettings.model_validate({k: v for k, v in overrides.items() if k not in bad})
    except ValidationError:
        return TrackerSettings()


def gateway_config(
    session: Session, gateway: Gateway, now: datetime, rotation_exponent: int
) -> GatewayConfigPublic:
    """The gateway's effective config: server defaults, its overrides, its site's beacons, and the dwell
    marks its site's campaigns are decided at (so a changed minimum dwell changes the config's ETag)."""
    overrides = _overrides(gateway)
    watched: dict[str, WatchedBeaconPublic] = {}
    for beacon in repository.site_beacons(session, gateway.site_id):
        key = watched_identifier(beacon.kind, beacon.identifier)
        if key is None:
            log.warning(
                "site beacon %s (%s %r) is malformed; not watched", beacon.id, beacon.kind, beacon.identifier
            )
        elif key not in watched and len(watched) < MAX_WATCHED:
            watched[key] = WatchedBeaconPublic(identifier=key, measured_power=beacon.measured_power)
    marks = dwell_marks(policy(session), repository.site_campaign_dwells(session, gateway.site_id, now))
    tracker = _tracker(gateway, overrides.tracker).model_copy(
        update={"dwell_marks": marks, "rotation_s": float(2**rotation_exponent)}
    )
    return GatewayConfigPublic(
        tracker=tracker,
        watched=sorted(watched.values(), key=lambda w: w.identifier),
        heartbeat_s=overrides.heartbeat_s or DEFAULT_HEARTBEAT_S,
    )


def config_etag(config: GatewayConfigPublic) -> str:
    """A strong ETag: the hash of the config's canonical JSON, so equal configs have equal tags."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of tags or "*", compared weakly (a W/ prefix does not matter)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def record_heartbeat(session: Session, gateway: Gateway, heartbeat: HeartbeatIn, now: datetime) -> int:
    """Keep the gateway's latest heartbeat, move its site's beacons' last sightings; returns how many.

    Sightings are matched against this gateway's own site only: another charity's beacon with the same
    identifier is never touched.
    """
    gateway.last_seen_at = now
    gateway.last_heartbeat = heartbeat.model_dump(mode="json") | {"received_at": now.isoformat()}
    if not heartbeat.beacons:
        return 0
    # Rows typed differently ("AB.."/"ab..") may name one beacon; a sighting then moves each of them.
    beacons: dict[str, list[int]] = {}
    for beacon in repository.site_beacons(session, gateway.site_id):
        key = watched_identifier(beacon.kind, beacon.identifier)
        if key is not None:
            beacons.setdefault(key, []).append(beacon.id)
    moved = 0
    for sighting in heartbeat.beacons:
        key = _sighting_key(sighting.identifier)
        seen_at = now - timedelta(seconds=sighting.seen_s_ago)
        for beacon_id in beacons.get(key, []) if key is not None else []:
            moved += repository.mark_beacon_seen(
                session, gateway.site_id, beacon_id, seen_at, sighting.battery_mv
            )
    return moved
