"""Queries about one subscriber's own data: exclusions, push channels, consent, export and erasure."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.orm import Session

from server.campaigns.models import PairedDevice
from server.impact.models import PromptReference
from server.policy.models import PersonHistory
from server.presence.models import ProximityEvent, Visit
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.sites.models import Site
from server.subscribers.models import ConsentRecord, Exclusion, PushChannel, Subscriber
from server.tenancy.models import Organisation


def lock(session: Session, subscriber_id: uuid.UUID) -> None:
    """Serialise this person's own writes (a no-op on SQLite, which has one writer anyway).

    FOR NO KEY UPDATE, as the policy's lock: it conflicts with that lock, but not with the FOR KEY SHARE
    that concurrent inserts referencing this person take, which FOR UPDATE would deadlock against."""
    query = select(Subscriber.id).where(Subscriber.id == subscriber_id).with_for_update(key_share=True)
    session.execute(query)


def site(session: Session, site_id: int) -> Site | None:
    return session.get(Site, site_id)


def organisation(session: Session, organisation_id: int) -> Organisation | None:
    return session.get(Organisation, organisation_id)


# --- Exclusions -----------------------------------------------------------------------------------------


def exclusions(session: Session, subscriber_id: uuid.UUID) -> Sequence[Row[Exclusion, str]]:
    """The person's exclusions, oldest first, each with the site's or the charity's name."""
    name = func.coalesce(Site.name, Organisation.name)
    return session.execute(
        select(Exclusion, name)
        .outerjoin(Site, Site.id == Exclusion.site_id)
        .outerjoin(Organisation, Organisation.id == Exclusion.organisation_id)
        .where(Exclusion.subscriber_id == subscriber_id)
        .order_by(Exclusion.id)
    ).all()


def find_exclusion(
    session: Session, subscriber_id: uuid.UUID, *, site_id: int | None, organisation_id: int | None
) -> Exclusion | None:
    return session.scalar(
        select(Exclusion)
        .where(
            Exclusion.subscriber_id == subscriber_id,
            Exclusion.site_id.is_(None) if site_id is None else Exclusion.site_id == site_id,
            Exclusion.organisation_id.is_(None)
            if organisation_id is None
            else Exclusion.organisation_id == organisation_id,
        )
        .order_by(Exclusion.id)
        .limit(1)
    )


def own_exclusion(session: Session, subscriber_id: uuid.UUID, exclusion_id: int) -> Exclusion | None:
    return session.scalar(
        select(Exclusion).where(Exclusion.id == exclusion_id, Exclusion.subscriber_id == subscriber_id)
    )


# --- Push channels --------------------------------------------------------------------------------------


def push_channels(session: Session, subscriber_id: uuid.UUID) -> Sequence[PushChannel]:
    return session.scalars(
        select(PushChannel).where(PushChannel.subscriber_id == subscriber_id).order_by(PushChannel.id)
    ).all()


def find_push_channel(
    session: Session, subscriber_id: uuid.UUID, kind: str, endpoint: str
) -> PushChannel | None:
    return session.scalar(
        select(PushChannel)
        .where(
            PushChannel.subscriber_id == subscriber_id,
            PushChannel.kind == kind,
            PushChannel.endpoint == endpoint,
        )
        .order_by(PushChannel.id)
        .limit(1)
    )


def own_push_channel(session: Session, subscriber_id: uuid.UUID, channel_id: int) -> PushChannel | None:
    return session.scalar(
        select(PushChannel).where(PushChannel.id == channel_id, PushChannel.subscriber_id == subscriber_id)
    )


def active_push_channels(session: Session, subscriber_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PushChannel)
            .where(PushChannel.subscriber_id == subscriber_id, PushChannel.retired_at.is_(None))
        )
        or 0
    )


# --- Consent --------------------------------------------------------------------------------------------


def consent_records(session: Session, subscriber_id: uuid.UUID) -> Sequence[ConsentRecord]:
    return session.scalars(
        select(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id).order_by(ConsentRecord.id)
    ).all()


def end_active_consents(session: Session, subscriber_id: uuid.UUID, now: datetime) -> None:
    """Mark the consents still in force as withdrawn (they are superseded or revoked) at `now`."""
    session.execute(
        update(ConsentRecord)
        .where(ConsentRecord.subscriber_id == subscriber_id, ConsentRecord.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
    )


# --- Export ---------------------------------------------------------------------------------------------


def proximity_events(session: Session, subscriber_id: uuid.UUID) -> Sequence[ProximityEvent]:
    return session.scalars(
        select(ProximityEvent)
        .where(ProximityEvent.subscriber_id == subscriber_id)
        .order_by(ProximityEvent.observed_at, ProximityEvent.id)
    ).all()


def visits(session: Session, subscriber_id: uuid.UUID) -> Sequence[Visit]:
    return session.scalars(
        select(Visit).where(Visit.subscriber_id == subscriber_id).order_by(Visit.started_at, Visit.id)
    ).all()


def test_devices(session: Session, subscriber_id: uuid.UUID) -> Sequence[PairedDevice]:
    """The charities this phone paired itself with to receive their test sends."""
    return session.scalars(
        select(PairedDevice).where(PairedDevice.subscriber_id == subscriber_id).order_by(PairedDevice.id)
    ).all()


# --- Erasure --------------------------------------------------------------------------------------------


def erase(session: Session, subscriber_id: uuid.UUID, now: datetime) -> None:
    """Delete every personal row of the subscriber and cut the consent records loose as proof.

    The foreign keys cascade too; deleting explicitly, children first, keeps erasure complete even where a
    database runs without foreign-key enforcement (a SQLite connection that missed the pragma).
    """
    decisions = select(PromptDecision.id).where(PromptDecision.subscriber_id == subscriber_id)
    session.execute(delete(PromptResponse).where(PromptResponse.decision_id.in_(decisions)))
    session.execute(delete(PromptReference).where(PromptReference.decision_id.in_(decisions)))
    session.execute(delete(Delivery).where(Delivery.decision_id.in_(decisions)))
    session.execute(delete(PromptDecision).where(PromptDecision.subscriber_id == subscriber_id))
    session.execute(delete(ProximityEvent).where(ProximityEvent.subscriber_id == subscriber_id))
    session.execute(delete(Visit).where(Visit.subscriber_id == subscriber_id))
    session.execute(delete(PushChannel).where(PushChannel.subscriber_id == subscriber_id))
    session.execute(delete(Exclusion).where(Exclusion.subscriber_id == subscriber_id))
    session.execute(delete(PairedDevice).where(PairedDevice.subscriber_id == subscriber_id))
    session.execute(delete(PersonHistory).where(PersonHistory.subscriber_id == subscriber_id))
    end_active_consents(session, subscriber_id, now)
    session.execute(
        update(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id).values(subscriber_id=None)
    )
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber_id))
