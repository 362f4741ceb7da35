"""Demo data: two charities, one site each, a running campaign each, and a gateway per site."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.core.security import hash_password
from server.sites.models import Gateway, Site
from server.sites.service import issue_enrolment_code, reissue_enrolment_code
from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings

_CHARITIES = [
    {
        "slug": "hospiz-am-park",
        "name": "Hospiz am Park",
        "site": "Hospiz am Park, Eingang Parkstraße",
        "kind": "volunteer",
        "campaign": "Ehrenamt im Hospiz",
        "cta_url": "https://hospiz-am-park.example/ehrenamt",
        "variants": [
            (
                "de",
                "A",
                "Zeit schenken?",
                "Das Hospiz hier sucht Menschen, die Gästen vorlesen.",
                "Mehr erfahren",
            ),
            ("de", "B", "Eine Stunde pro Woche?", "Lesen Sie unseren Gästen vor.", "Mitmachen"),
            (
                "en",
                "A",
                "Give some time?",
                "The hospice here is looking for people to read to guests.",
                "Learn more",
            ),
        ],
    },
    {
        "slug": "tafel-nordstadt",
        "name": "Tafel Nordstadt",
        "site": "Tafel Nordstadt, Ausgabestelle",
        "kind": "donation",
        "campaign": "Wintervorrat",
        "cta_url": "https://tafel-nordstadt.example/spenden",
        "variants": [
            (
                "de",
                "A",
                "Ein Korb für den Winter",
                "Mit 10 € füllen Sie einen Korb für eine Familie.",
                "Spenden",
            ),
            ("en", "A", "A basket for winter", "10 € fills a basket for a family here.", "Donate"),
        ],
    },
]


DEMO_ADMIN = "demo@nahbar.example"


@dataclass(frozen=True, slots=True)
class DemoSite:
    site_id: int
    name: str
    enrolment_code: str


# Quiet hours (21:00-08:00 in the site's zone) would make an evening demo show no prompt at all: the demo's
# street lies in Berlin during Berlin's day, else wherever it is closest to the afternoon.
_ZONES = ("Europe/Berlin", "America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "Asia/Tokyo")


def daytime_zone(now: datetime) -> str:
    def local_hour(zone: str) -> float:
        local = now.astimezone(ZoneInfo(zone))
        return local.hour + local.minute / 60

    if 9 <= local_hour(_ZONES[0]) < 19:
        return _ZONES[0]
    return min(_ZONES, key=lambda zone: abs(local_hour(zone) - 14))


def seed(session: Session, now: datetime) -> list[DemoSite]:
    """Create what is missing (safe to run again) and issue a fresh enrolment code for each demo gateway."""
    if session.scalar(select(PlatformSettings).limit(1)) is None:
        session.add(PlatformSettings())
    sites: list[DemoSite] = []
    for spec in _CHARITIES:
        org = session.scalar(select(Organisation).where(Organisation.slug == spec["slug"]))
        if org is None:
            org = Organisation(
                slug=spec["slug"], name=spec["name"], privacy_contact="datenschutz@example.org"
            )
            session.add(org)
            session.flush()
        site = session.scalar(select(Site).where(Site.organisation_id == org.id))
        if site is None:
            site = Site(organisation_id=org.id, name=spec["site"], language="de")
            session.add(site)
            session.flush()
            campaign = Campaign(
                organisation_id=org.id,
                name=spec["campaign"],
                kind=spec["kind"],
                status="active",
                priority=1,
                cta_url=spec["cta_url"],
            )
            session.add(campaign)
            session.flush()
            session.add(CampaignSite(campaign_id=campaign.id, site_id=site.id))
            for language, label, title, body, cta in spec["variants"]:
                session.add(
                    CampaignVariant(
                        campaign_id=campaign.id,
                        language=language,
                        label=label,
                        title=title,
                        body=body,
                        cta_label=cta,
                    )
                )
        site.timezone = daytime_zone(now)  # again at every start: a demo database lives across days
        gateway = session.scalar(select(Gateway).where(Gateway.site_id == site.id))
        if gateway is None:
            code = issue_enrolment_code(session, site, "demo window gateway", now).code
        else:
            code = reissue_enrolment_code(session, gateway, now)
        sites.append(DemoSite(site.id, site.name, code))
    session.flush()
    return sites


def demo_admin(session: Session, password: str) -> str:
    """The demo's admin account, owner of the demo charities, with this run's password; its e-mail."""
    user = session.scalar(select(AdminUser).where(AdminUser.email == DEMO_ADMIN))
    if user is None:
        user = AdminUser(email=DEMO_ADMIN, password_hash="")
        session.add(user)
        session.flush()
    user.password_hash = hash_password(password)  # a new one every start: the last one was printed
    user.disabled_at = None
    for spec in _CHARITIES:
        org = session.scalar(select(Organisation).where(Organisation.slug == spec["slug"]))
        member = (
            session.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.organisation_id == org.id)
            )
            if org is not None
            else None
        )
        if org is not None and member is None:
            session.add(Membership(user_id=user.id, organisation_id=org.id, role="owner"))
    session.flush()
    return user.email
