"""Charity sites, the gateways in their windows and the sites' own beacons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA; NULL means "never prompt" (fail closed)
    language: Mapped[str] = mapped_column(String(8), default="de")
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")  # local HH:MM
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    # The iBeacon region iOS phones monitor for this site (the phone-reported sighting path).
    ibeacon_uuid: Mapped[str | None] = mapped_column(String(36))
    ibeacon_major: Mapped[int | None] = mapped_column()
    # The charity publishes this site's daily counts as open data (k-anonymised; server/impact/open_data.py).
    open_data: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_expires_at: Mapped[datetime | None] = mapped_column()
    # The code last redeemed, so that typing it again is answered "already used", not "unknown".
    spent_code_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    enrolled_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen_at: Mapped[datetime | None] = mapped_column()
    last_heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class SiteBeacon(Base):
    """A battery beacon the charity placed; gateways watch it for health and calibration."""

    __tablename__ = "site_beacons"
    __table_args__ = (UniqueConstraint("site_id", "kind", "identifier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ibeacon | altbeacon | eddystone_uid
    identifier: Mapped[str] = mapped_column(String(80))  # e.g. "uuid/major/minor" or "namespace/instance"
    label: Mapped[str | None] = mapped_column(String(200))
    measured_power: Mapped[int | None] = mapped_column()  # calibrated RSSI at 1 m
    last_seen_at: Mapped[datetime | None] = mapped_column()
    battery_mv: Mapped[int | None] = mapped_column()
