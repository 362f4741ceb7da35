"""Admin queries for sites, beacons and gateways, each filtered through the caller's Principal."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from server.core.paging import PageParams, paginate
from server.sites.models import Gateway, Site, SiteBeacon
from server.tenancy.scope import Principal

SITE_SORT = {"id": Site.id, "name": Site.name, "created_at": Site.created_at}
GATEWAY_SORT = {
    "id": Gateway.id,
    "name": Gateway.name,
    "last_seen_at": Gateway.last_seen_at,
    "created_at": Gateway.created_at,
}


def sites(
    scope: Principal,
    session: Session,
    params: PageParams,
    organisation_id: int | None = None,
    q: str | None = None,
) -> tuple[list[Site], int]:
    query = select(Site).where(scope.visible(Site.organisation_id))
    if organisation_id is not None:
        query = query.where(Site.organisation_id == organisation_id)
    if q:
        query = query.where(Site.name.ilike(f"%{q}%"))
    return paginate(session, query, params, SITE_SORT, Site.id.asc())


def site(scope: Principal, session: Session, site_id: int) -> Site | None:
    return session.scalar(select(Site).where(Site.id == site_id, scope.visible(Site.organisation_id)))


def beacons(scope: Principal, session: Session, site_id: int) -> Sequence[SiteBeacon]:
    return session.scalars(
        select(SiteBeacon)
        .join(Site, Site.id == SiteBeacon.site_id)
        .where(SiteBeacon.site_id == site_id, scope.visible(Site.organisation_id))
        .order_by(SiteBeacon.id)
    ).all()


def beacon(scope: Principal, session: Session, site_id: int, beacon_id: int) -> SiteBeacon | None:
    return session.scalar(
        select(SiteBeacon)
        .join(Site, Site.id == SiteBeacon.site_id)
        .where(SiteBeacon.id == beacon_id, SiteBeacon.site_id == site_id, scope.visible(Site.organisation_id))
    )


def gateways(
    scope: Principal,
    session: Session,
    params: PageParams,
    site_id: int | None = None,
    organisation_id: int | None = None,
    include_revoked: bool = False,
) -> tuple[list[Gateway], int]:
    query = select(Gateway).where(scope.visible(Gateway.organisation_id))
    if site_id is not None:
        query = query.where(Gateway.site_id == site_id)
    if organisation_id is not None:
        query = query.where(Gateway.organisation_id == organisation_id)
    if not include_revoked:
        query = query.where(Gateway.revoked_at.is_(None))
    return paginate(session, query, params, GATEWAY_SORT, Gateway.id.asc())


def gateway(scope: Principal, session: Session, gateway_id: int) -> Gateway | None:
    return session.scalar(
        select(Gateway).where(Gateway.id == gateway_id, scope.visible(Gateway.organisation_id))
    )


def fleet(session: Session) -> Sequence[Gateway]:
    """Every gateway of the platform, with what its health needs (for the operator's metrics)."""
    columns = (
        Gateway.revoked_at,
        Gateway.enrolled_at,
        Gateway.last_seen_at,
        Gateway.config,
        Gateway.last_heartbeat,
    )
    return session.scalars(select(Gateway).options(load_only(*columns))).all()
