"""Builds the charity side of a test through the real models, and drives the phone and gateway over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mobile_api.eid import eid
from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.sites.models import Site
from server.sites.service import issue_enrolment_code
from server.tenancy.models import Organisation, PlatformSettings


@dataclass(frozen=True)
class Charity:
    organisation_id: int
    site_id: int
    campaign_id: int
    enrolment_code: str


def make_charity(
    session: Session,
    now: datetime,
    *,
    slug: str = "hospiz",
    kind: str = "volunteer",
    timezone: str | None = "Europe/Berlin",
    status: str = "active",
) -> Charity:
    """An organisation with one site, one campaign (DE and EN variants) and a gateway enrolment code."""
    if session.query(PlatformSettings).first() is None:
        session.add(PlatformSettings())
    org = Organisation(slug=slug, name=f"{slug} e.V.", privacy_contact="dpo@example.org")
    session.add(org)
    session.flush()
    site = Site(organisation_id=org.id, name=f"{slug} door", timezone=timezone, language="de")
    session.add(site)
    session.flush()
    campaign = Campaign(organisation_id=org.id, name=f"{slug} {kind}", kind=kind, status=status, priority=1)
    session.add(campaign)
    session.flush()
    session.add(CampaignSite(campaign_id=campaign.id, site_id=site.id))
    session.add_all(
        [
            CampaignVariant(
                campaign_id=campaign.id, language="de", title="Helfen?", body="Bitte.", cta_label="Ja"
            ),
            CampaignVariant(
                campaign_id=campaign.id, language="en", title="Help?", body="Please.", cta_label="Yes"
            ),
        ]
    )
    code = issue_enrolment_code(session, site, "window", now).code
    session.commit()
    return Charity(org.id, site.id, campaign.id, code)


def enrol(client: TestClient, code: str) -> dict[str, str]:
    """Enrol a gateway over HTTP; returns the Authorization header it then uses."""
    answer = client.post("/gateway/v1/enroll", json={"code": code})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@dataclass(frozen=True)
class Phone:
    headers: dict[str, str]
    identity_key: bytes
    k: int

    def eid_at(self, when: datetime) -> str:
        return eid(self.identity_key, int(when.timestamp()), self.k).hex()


def opt_in(client: TestClient, scopes: list[str] | None = None, language: str = "de") -> Phone:
    body = {
        "consent_text_version": "2026-11",
        "scopes": scopes or ["volunteer", "donation"],
        "language": language,
    }
    answer = client.post("/mobile/v1/optin", json=body)
    assert answer.status_code == 201, answer.text
    data = answer.json()
    return Phone(
        {"Authorization": f"Bearer {data['device_token']}"},
        bytes.fromhex(data["identity_key"]),
        data["rotation_exponent"],
    )


def event(key: str, phone: Phone, when: datetime, kind: str = "enter", dwell: float = 0) -> dict[str, object]:
    return {
        "id": key,
        "kind": kind,
        "eid": phone.eid_at(when),
        "observed_at": when.isoformat(),
        "rssi": -62.5,
        "distance_m": 1.8,
        "dwell_s": dwell,
    }
