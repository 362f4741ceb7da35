"""The platform operator's settings, organisations (tenants), admin users and their memberships."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from server.core import const
from server.core.db import Base, utcnow


class PlatformSettings(Base):
    """One row: the operator's maxima; charities and people may only tighten them."""

    __tablename__ = "platform_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    max_prompts_per_day: Mapped[int] = mapped_column(default=const.DEFAULT_MAX_PER_DAY)
    max_prompts_per_week: Mapped[int] = mapped_column(default=const.DEFAULT_MAX_PER_WEEK)
    max_prompts_per_month: Mapped[int] = mapped_column(default=const.DEFAULT_MAX_PER_MONTH)
    min_org_cooldown_days: Mapped[int] = mapped_column(default=const.DEFAULT_ORG_COOLDOWN_DAYS)
    retention_days: Mapped[int] = mapped_column(default=14)
    # The least dwell a campaign may ask for, and the dwell of those that set none; walk-by campaigns (a
    # minimum dwell of 0, decided on enter) run only where the operator allows them.
    min_dwell_s: Mapped[int] = mapped_column(default=const.DEFAULT_MIN_DWELL_S, server_default="15")
    allow_walk_by: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The operator's quiet hours, "HH:MM" on each site's clock; sites, campaigns and people may add to them.
    quiet_start: Mapped[str] = mapped_column(
        String(5), default=const.DEFAULT_QUIET_START, server_default=const.DEFAULT_QUIET_START
    )
    quiet_end: Mapped[str] = mapped_column(
        String(5), default=const.DEFAULT_QUIET_END, server_default=const.DEFAULT_QUIET_END
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # for If-Match on admin updates


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    privacy_contact: Mapped[str | None] = mapped_column(String(320))
    prompts_per_week: Mapped[int | None] = mapped_column()  # stricter than the platform, or NULL
    cooldown_days: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)
    # Set by the operator: the charity's campaigns do not run and cannot start; its admins see a notice.
    suspended_at: Mapped[datetime | None] = mapped_column()


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_operator: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column()


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # for If-Match on role changes
