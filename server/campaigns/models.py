"""Campaigns a charity runs, the sites they run at, and their localised variants."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # volunteer | donation
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    priority: Mapped[int] = mapped_column(default=0)
    starts_at: Mapped[datetime | None] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column()
    daily_from: Mapped[str | None] = mapped_column(String(5))  # local HH:MM at the site
    daily_until: Mapped[str | None] = mapped_column(String(5))
    cta_url: Mapped[str | None] = mapped_column(String(2000))
    daily_budget: Mapped[int | None] = mapped_column()  # prompts per day across all sites
    min_dwell_s: Mapped[int | None] = mapped_column()
    max_dwell_s: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class CampaignSite(Base):
    __tablename__ = "campaign_sites"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CampaignVariant(Base):
    __tablename__ = "campaign_variants"
    __table_args__ = (UniqueConstraint("campaign_id", "language", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(16), default="A")  # A/B arm
    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    cta_label: Mapped[str] = mapped_column(String(40))


class PairingCode(Base):
    __tablename__ = "test_device_pairing_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class PairedDevice(Base):
    """A subscriber that paired itself with an organisation to receive its test sends."""

    __tablename__ = "test_devices"
    __table_args__ = (UniqueConstraint("organisation_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(60))
    paired_at: Mapped[datetime] = mapped_column(default=utcnow)
