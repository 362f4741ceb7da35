"""Trial sends ("test sends" in the API and to the charity): an editor sees a campaign's variant on a
real phone, and only on a phone that asked for it.

A subscriber becomes an organisation's test device only by its own act: the app enters a one-time pairing
code an editor created (shown once, stored hashed, valid for 15 minutes). A test send then goes to that
device alone, through the normal outbox, as a decision with outcome `test`: no cap counts it, no statistic
includes it, and the landing page records no answer to it.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit import service as audit
from server.campaigns.models import Campaign, CampaignSite, CampaignVariant, PairedDevice, PairingCode
from server.core.const import Outcome, Role
from server.core.errors import NahbarError, NotFound
from server.core.security import hash_token
from server.prompts.deliveries import create_deliveries
from server.prompts.models import Delivery, PromptDecision
from server.sites.models import Site
from server.subscribers.models import Subscriber
from server.tenancy.models import Organisation
from server.tenancy.scope import Principal

PAIRING_TTL: Final = timedelta(minutes=15)
# Typed on a phone: no 0/O or 1/I/L. 12 characters of 31 are 59 bits, single-use and short-lived.
_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
TEST_REASON: Final = "test_send"


class InvalidPairingCode(NahbarError):
    status = 422
    code = "invalid_pairing_code"


class NoSite(NahbarError):
    status = 422
    code = "rule_violation"


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    expires_at: datetime


def issue_code(session: Session, principal: Principal, org_id: int, now: datetime) -> IssuedCode:
    """A one-time code (editors); only its hash is kept, so this is the one time it is shown."""
    principal.require(org_id, Role.EDITOR)
    if session.get(Organisation, org_id) is None:  # the operator passes require() for any id
        raise NotFound("No such organisation, or it is not yours.")
    code = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    row = PairingCode(
        organisation_id=org_id,
        code_hash=hash_token(code),
        created_by=principal.user_id,
        created_at=now,
        expires_at=now + PAIRING_TTL,
    )
    session.add(row)
    session.flush()
    audit.record(session, principal, "create", "test_device_pairing_code", row.id, org_id, None, None, now)
    return IssuedCode(code, row.expires_at)


def pair(session: Session, subscriber: Subscriber, code: str, label: str, now: datetime) -> PairedDevice:
    """The phone's own act: with a valid code it becomes the code's organisation's test device."""
    normalised = code.replace("-", "").replace(" ", "").upper()
    row = session.scalars(
        select(PairingCode).where(PairingCode.code_hash == hash_token(normalised)).with_for_update()
    ).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidPairingCode("This pairing code is unknown, used or expired; ask for a new one.")
    row.used_at = now
    device = session.scalars(
        select(PairedDevice).where(
            PairedDevice.organisation_id == row.organisation_id, PairedDevice.subscriber_id == subscriber.id
        )
    ).one_or_none()
    if device is None:
        device = PairedDevice(organisation_id=row.organisation_id, subscriber_id=subscriber.id, paired_at=now)
        session.add(device)
    device.label = label
    session.flush()
    return device


def organisation_name(session: Session, org_id: int) -> str:
    return session.scalars(select(Organisation.name).where(Organisation.id == org_id)).one()


def devices(session: Session, principal: Principal, org_id: int) -> list[PairedDevice]:
    """The organisation's test devices, oldest first."""
    principal.require(org_id, Role.VIEWER)
    return list(
        session.scalars(
            select(PairedDevice).where(PairedDevice.organisation_id == org_id).order_by(PairedDevice.id)
        )
    )


def _device(session: Session, org_id: int, device_id: int) -> PairedDevice:
    device = session.get(PairedDevice, device_id)
    if device is None or device.organisation_id != org_id:
        raise NotFound("No such test device in this organisation.")
    return device


def remove(session: Session, principal: Principal, org_id: int, device_id: int, now: datetime) -> None:
    """The device gets no more test sends (editors)."""
    principal.require(org_id, Role.EDITOR)
    device = _device(session, org_id, device_id)
    session.delete(device)
    audit.record(
        session, principal, "delete", "test_device", device_id, org_id, {"label": device.label}, None, now
    )


@dataclass(frozen=True, slots=True)
class Sent:
    decision: PromptDecision
    variant: CampaignVariant
    deliveries: list[Delivery]


def send(
    session: Session,
    principal: Principal,
    org_id: int,
    campaign_id: int,
    device_id: int,
    choice: tuple[int | None, str | None],
    now: datetime,
    ttl: timedelta,
) -> Sent:
    """The campaign's variant (by id, else by language, else in the phone's language) to one test device,
    through the outbox; any campaign status, since a draft is what one wants to see before it runs."""
    principal.require(org_id, Role.EDITOR)
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.organisation_id != org_id:
        raise NotFound("No such campaign in this organisation.")
    device = _device(session, org_id, device_id)
    variant = _variant(session, campaign_id, device.subscriber_id, *choice)
    site_id = _site(session, campaign)
    decision = PromptDecision(
        subscriber_id=device.subscriber_id,
        site_id=site_id,
        campaign_id=campaign_id,
        variant_id=variant.id,
        outcome=Outcome.TEST,
        reason=TEST_REASON,
        decided_at=now,
        expires_at=now + ttl,
    )
    session.add(decision)
    session.flush()
    deliveries = create_deliveries(session, decision)
    session.flush()
    after = {"test_device_id": device.id, "variant_id": variant.id, "decision_id": decision.id}
    audit.record(session, principal, "test_send", "campaign", campaign_id, org_id, None, after, now)
    return Sent(decision, variant, deliveries)


def _variant(
    session: Session, campaign_id: int, subscriber_id: uuid.UUID, variant_id: int | None, language: str | None
) -> CampaignVariant:
    query = select(CampaignVariant).where(CampaignVariant.campaign_id == campaign_id)
    if variant_id is not None:
        query = query.where(CampaignVariant.id == variant_id)
    else:
        if language is None:
            language = session.scalars(
                select(Subscriber.language).where(Subscriber.id == subscriber_id)
            ).one()
        query = query.where(CampaignVariant.language == language)
    variant = session.scalars(query.order_by(CampaignVariant.label, CampaignVariant.id)).first()
    if variant is None:
        raise NotFound("This campaign has no such variant; name one of its variants or languages.")
    return variant


def _site(session: Session, campaign: Campaign) -> int:
    """The site the inbox names: one of the campaign's, else one of the organisation's."""
    site_id = (
        session.scalars(
            select(CampaignSite.site_id)
            .where(CampaignSite.campaign_id == campaign.id)
            .order_by(CampaignSite.site_id)
        ).first()
        or session.scalars(
            select(Site.id).where(Site.organisation_id == campaign.organisation_id).order_by(Site.id)
        ).first()
    )
    if site_id is None:
        raise NoSite("A test send names a site, and this organisation has none yet; add a site first.")
    return site_id
