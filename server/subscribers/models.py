"""Pseudonymous subscribers (opted-in phones), their consent history, push channels and exclusions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class Subscriber(Base):
    """No name, e-mail or phone number: a random id, a sealed identity key and preferences."""

    __tablename__ = "subscribers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    device_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identity_key_sealed: Mapped[bytes] = mapped_column(LargeBinary(64))
    rotation_exponent: Mapped[int] = mapped_column()
    scopes: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8), default="de")
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # own quiet hours, lower caps
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class ConsentRecord(Base):
    """Proof of consent. Survives erasure with the subscriber link cut, to prove the withdrawal."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    text_version: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column()


class PushChannel(Base):
    __tablename__ = "push_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # webpush | fcm | apns
    endpoint: Mapped[str] = mapped_column(String(2000))  # Web Push endpoint, or the FCM/APNs token
    keys: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # p256dh/auth, apns environment
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()


class Exclusion(Base):
    """ "Not at this site" (site_id) or "not from this charity" (organisation_id): forever."""

    __tablename__ = "exclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
