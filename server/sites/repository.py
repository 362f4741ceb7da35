"""Queries for sites and gateways."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.sites.models import Gateway, Site


def gateway_by_code_hash(session: Session, code_hash: str) -> Gateway | None:
    return session.scalar(select(Gateway).where(Gateway.enrolment_code_hash == code_hash).with_for_update())


def site(session: Session, site_id: int) -> Site | None:
    return session.get(Site, site_id)
