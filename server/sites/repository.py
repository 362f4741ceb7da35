"""Queries for sites, gateways and the sites' own beacons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite
from server.core.const import CampaignStatus
from server.sites.models import Gateway, Site, SiteBeacon
from server.tenancy.models import Organisation


def gateway_by_code_hash(session: Session, code_hash: str) -> Gateway | None:
    return session.scalar(select(Gateway).where(Gateway.enrolment_code_hash == code_hash).with_for_update())


def gateway_by_spent_code_hash(session: Session, code_hash: str) -> Gateway | None:
    """The gateway that last redeemed this code, if any."""
    return session.scalar(select(Gateway).where(Gateway.spent_code_hash == code_hash).limit(1))


def site(session: Session, site_id: int) -> Site | None:
    return session.get(Site, site_id)


def site_campaign_dwells(
    session: Session, site_id: int, now: datetime
) -> list[tuple[int | None, int | None]]:
    """(min, max dwell) of the campaigns that run, or will, at a site: what its gateways report marks for."""
    rows = session.execute(
        select(Campaign.min_dwell_s, Campaign.max_dwell_s)
        .join(CampaignSite, CampaignSite.campaign_id == Campaign.id)
        .join(Organisation, Organisation.id == Campaign.organisation_id)
        .where(
            CampaignSite.site_id == site_id,
            Campaign.status == CampaignStatus.ACTIVE,
            Organisation.suspended_at.is_(None),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
        )
    )
    return [(row[0], row[1]) for row in rows]


def public_site(session: Session, site_id: int) -> tuple[Site, Organisation] | None:
    row = session.execute(
        select(Site, Organisation)
        .join(Organisation, Organisation.id == Site.organisation_id)
        .where(Site.id == site_id, Organisation.suspended_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1])


def site_beacons(session: Session, site_id: int) -> Sequence[SiteBeacon]:
    """The beacons of one site, oldest first (so that a cap keeps the same ones)."""
    return session.scalars(
        select(SiteBeacon).where(SiteBeacon.site_id == site_id).order_by(SiteBeacon.id)
    ).all()


def mark_beacon_seen(
    session: Session, site_id: int, beacon_id: int, seen_at: datetime, battery_mv: int | None
) -> bool:
    """Move the beacon's last sighting forward to `seen_at` (never back); True if it moved.

    One conditional UPDATE, so that two gateways of a site reporting at once cannot move it backwards.
    """
    values: dict[str, object] = {"last_seen_at": seen_at}
    if battery_mv is not None:
        values["battery_mv"] = battery_mv
    result = session.execute(
        update(SiteBeacon)
        .where(
            SiteBeacon.id == beacon_id,
            SiteBeacon.site_id == site_id,
            or_(SiteBeacon.last_seen_at.is_(None), SiteBeacon.last_seen_at < seen_at),
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return isinstance(result, CursorResult) and result.rowcount > 0
