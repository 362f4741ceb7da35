"""Admin rules for sites, their beacons and gateways: roles, audit, enrolment codes and fleet health."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, get_args

from sqlalchemy.orm import Session

from server.audit import service as audit
from server.core.const import Role
from server.core.errors import Conflict, NotFound, RuleViolation
from server.core.paging import PageParams
from server.core.versions import claim_version
from server.sites import admin_repository as repository
from server.sites.admin_schemas import (
    BeaconCreate,
    BeaconPublic,
    GatewayPublic,
    Health,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from server.sites.models import Gateway, Site, SiteBeacon
from server.sites.schemas import DEFAULT_HEARTBEAT_S
from server.sites.service import IssuedCode, issue_enrolment_code, reissue_enrolment_code, watched_identifier
from server.tenancy import repository as tenancy
from server.tenancy.scope import Principal

MISSED_HEARTBEATS: Final = 3  # a gateway this many heartbeats late is "stale"
# A scan start that fails once is retried within seconds; this many in a row is a gateway that hears nothing.
SCANNER_FAILURES: Final = 3


def list_sites(
    scope: Principal,
    session: Session,
    page: PageParams,
    organisation_id: int | None = None,
    q: str | None = None,
) -> tuple[list[Site], int]:
    """The caller's sites (of one organisation, or whose name holds `q`)."""
    return repository.sites(scope, session, page, organisation_id, q)


def list_gateways(
    scope: Principal,
    session: Session,
    page: PageParams,
    site_id: int | None = None,
    organisation_id: int | None = None,
    include_revoked: bool = False,
) -> tuple[list[Gateway], int]:
    """The caller's gateways (of one site or organisation), revoked ones only when asked."""
    return repository.gateways(scope, session, page, site_id, organisation_id, include_revoked)


def beacons(scope: Principal, session: Session, site_id: int) -> list[SiteBeacon]:
    """A visible site's own beacons, with when a gateway last saw each and its battery."""
    visible_site(scope, session, site_id)
    return list(repository.beacons(scope, session, site_id))


def visible_site(scope: Principal, session: Session, site_id: int) -> Site:
    site = repository.site(scope, session, site_id)
    if site is None:
        raise NotFound("No such site, or it is not yours.")
    return site


def visible_gateway(scope: Principal, session: Session, gateway_id: int) -> Gateway:
    gateway = repository.gateway(scope, session, gateway_id)
    if gateway is None:
        raise NotFound("No such gateway, or it is not yours.")
    return gateway


def _site(row: Site) -> dict[str, Any]:
    return SitePublic.model_validate(row).model_dump(mode="json")


def _check_quiet_hours(start: str, end: str) -> None:
    # An empty window could be read as "never quiet" or "always quiet"; neither is what an admin who typed it
    # can be assumed to mean.
    if start == end:
        raise RuleViolation(
            f"quiet_start and quiet_end are both {start}; give a window such as 21:00-08:00 (it may wrap "
            "midnight). The site's quiet hours only add to the operator's.",
            extra={"field": "quiet_end"},
        )


def create_site(session: Session, scope: Principal, body: SiteCreate, now: datetime) -> Site:
    if tenancy.organisation(scope, session, body.organisation_id) is None:
        raise NotFound("No such organisation, or it is not yours.")
    scope.require(body.organisation_id, Role.EDITOR)
    _check_quiet_hours(body.quiet_start, body.quiet_end)
    site = Site(**body.model_dump(), created_at=now)
    session.add(site)
    session.flush()
    audit.record(session, scope, "site.create", "site", site.id, site.organisation_id, None, _site(site), now)
    return site


def update_site(
    session: Session, scope: Principal, site_id: int, body: SiteUpdate, if_match: str | None, now: datetime
) -> Site:
    site = visible_site(scope, session, site_id)
    scope.require(site.organisation_id, Role.EDITOR)
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "language", "quiet_start", "quiet_end", "open_data"):
        if required in changes and changes[required] is None:
            raise RuleViolation(f"{required} cannot be empty.", extra={"field": required})
    if "quiet_start" in changes or "quiet_end" in changes:
        _check_quiet_hours(
            changes.get("quiet_start", site.quiet_start), changes.get("quiet_end", site.quiet_end)
        )
    before = _site(site)
    claim_version(session, site, if_match)
    for key, value in changes.items():
        setattr(site, key, value)
    session.flush()
    audit.record(
        session, scope, "site.update", "site", site.id, site.organisation_id, before, _site(site), now
    )
    return site


def add_beacon(
    session: Session, scope: Principal, site_id: int, body: BeaconCreate, now: datetime
) -> SiteBeacon:
    site = visible_site(scope, session, site_id)
    scope.require(site.organisation_id, Role.EDITOR)
    if watched_identifier(body.kind, body.identifier) is None:
        raise RuleViolation(
            f"{body.identifier!r} is not a valid {body.kind} identifier; iBeacon is 'uuid/major/minor', "
            "AltBeacon '32 hex/major/minor', Eddystone-UID '20 hex namespace/12 hex instance'.",
            extra={"field": "identifier"},
        )
    key = watched_identifier(body.kind, body.identifier)
    if any(
        watched_identifier(b.kind, b.identifier) == key for b in repository.beacons(scope, session, site_id)
    ):
        raise Conflict("This site already has that beacon.")
    beacon = SiteBeacon(site_id=site.id, **body.model_dump())
    session.add(beacon)
    session.flush()
    after = BeaconPublic.model_validate(beacon).model_dump(mode="json")
    audit.record(
        session, scope, "beacon.create", "site_beacon", beacon.id, site.organisation_id, None, after, now
    )
    return beacon


def remove_beacon(session: Session, scope: Principal, site_id: int, beacon_id: int, now: datetime) -> None:
    site = visible_site(scope, session, site_id)
    scope.require(site.organisation_id, Role.EDITOR)
    beacon = repository.beacon(scope, session, site_id, beacon_id)
    if beacon is None:
        raise NotFound("No such beacon at this site.")
    before = BeaconPublic.model_validate(beacon).model_dump(mode="json")
    audit.record(
        session, scope, "beacon.delete", "site_beacon", beacon.id, site.organisation_id, before, None, now
    )
    session.delete(beacon)


def enrol_command(public_url: str, code: str) -> str:
    """What to run on the Pi with a new code (the agent's user runs it: see the gateway setup notes)."""
    return f"beacon-agent enroll --server {public_url.rstrip('/')} --code {code}"


def health(gateway: Gateway, now: datetime) -> Health:
    """Fleet health: revoked, pending (never enrolled), silent, stale, scanner_failing or ok."""
    if gateway.revoked_at is not None:
        return "revoked"
    if gateway.enrolled_at is None:
        return "pending"
    if gateway.last_seen_at is None:
        return "silent"
    interval = (gateway.config or {}).get("heartbeat_s") or DEFAULT_HEARTBEAT_S
    if now - gateway.last_seen_at > timedelta(seconds=MISSED_HEARTBEATS * float(interval)):
        return "stale"
    beat = gateway.last_heartbeat or {}
    failures = beat.get("scanner_failures")
    # A scan that only heard nothing ("silent") may face an empty street at night: not a failure to report.
    if (
        beat.get("scanner_state") == "failing"
        and beat.get("scanner_error") != "silent"
        and isinstance(failures, int)
        and failures >= SCANNER_FAILURES
    ):
        return "scanner_failing"
    return "ok"


def fleet_health(session: Session, now: datetime) -> dict[Health, int]:
    """How many of the platform's gateways are in each health state (every state named, 0 or not)."""
    counts: dict[Health, int] = dict.fromkeys(get_args(Health), 0)
    for gateway in repository.fleet(session):
        counts[health(gateway, now)] += 1
    return counts


def gateway_public(gateway: Gateway, now: datetime) -> GatewayPublic:
    return GatewayPublic(
        id=gateway.id,
        organisation_id=gateway.organisation_id,
        site_id=gateway.site_id,
        name=gateway.name,
        enrolled_at=gateway.enrolled_at,
        revoked_at=gateway.revoked_at,
        last_seen_at=gateway.last_seen_at,
        health=health(gateway, now),
        last_heartbeat=gateway.last_heartbeat,
        created_at=gateway.created_at,
        version=gateway.version,
    )


def _gw(gateway: Gateway) -> dict[str, Any]:
    return {
        "name": gateway.name,
        "site_id": gateway.site_id,
        "revoked_at": gateway.revoked_at.isoformat() if gateway.revoked_at else None,
    }


def create_gateway(session: Session, scope: Principal, site_id: int, name: str, now: datetime) -> IssuedCode:
    site = visible_site(scope, session, site_id)
    scope.require(site.organisation_id, Role.EDITOR)
    issued = issue_enrolment_code(session, site, name, now)
    audit.record(
        session,
        scope,
        "gateway.create",
        "gateway",
        issued.gateway.id,
        site.organisation_id,
        None,
        _gw(issued.gateway),
        now,
    )
    return issued


def revoke_gateway(session: Session, scope: Principal, gateway_id: int, now: datetime) -> Gateway:
    """The gateway's token and any open code stop working at once."""
    gateway = visible_gateway(scope, session, gateway_id)
    scope.require(gateway.organisation_id, Role.EDITOR)
    before = _gw(gateway)
    gateway.revoked_at = now
    gateway.token_hash = None
    gateway.enrolment_code_hash = None
    gateway.enrolment_expires_at = None
    gateway.version += 1
    audit.record(
        session,
        scope,
        "gateway.revoke",
        "gateway",
        gateway.id,
        gateway.organisation_id,
        before,
        _gw(gateway),
        now,
    )
    return gateway


def rotate_gateway(session: Session, scope: Principal, gateway_id: int, now: datetime) -> IssuedCode:
    """A new one-time code; the current token stops working when the code is redeemed (re-enrolment)."""
    gateway = visible_gateway(scope, session, gateway_id)
    scope.require(gateway.organisation_id, Role.EDITOR)
    code = reissue_enrolment_code(session, gateway, now)
    gateway.version += 1
    assert gateway.enrolment_expires_at is not None
    audit.record(
        session,
        scope,
        "gateway.rotate",
        "gateway",
        gateway.id,
        gateway.organisation_id,
        None,
        _gw(gateway),
        now,
    )
    return IssuedCode(gateway, code, gateway.enrolment_expires_at)
