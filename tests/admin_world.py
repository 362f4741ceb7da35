"""Two charities, A and B, with every kind of admin object, and signed-in callers for the admin API tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from server.accounts.models import AdminSession, ApiToken, Invite
from server.audit.models import AuditEntry
from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.core.const import SESSION_COOKIE
from server.core.security import KeySealer, hash_password, hash_token
from server.prompts.models import Delivery, PromptDecision
from server.sites.models import SiteBeacon
from server.sites.service import issue_enrolment_code
from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings
from server.webhooks.models import WebhookEndpoint

PASSWORD = "correct horse battery staple"
API = "/admin/api/v1"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2 is slow on purpose: hash once per run


def add_user(
    session: Session, email: str, *, operator: bool = False, roles: dict[int, str] | None = None
) -> AdminUser:
    user = AdminUser(email=email, password_hash=password_hash(), is_operator=operator)
    session.add(user)
    session.flush()
    for org_id, role in (roles or {}).items():
        session.add(Membership(user_id=user.id, organisation_id=org_id, role=role))
    session.flush()
    return user


def signed_in(session: Session, user: AdminUser, now: datetime) -> dict[str, str]:
    """Headers of a browser session for `user`, made directly (login itself is tested over HTTP)."""
    token, csrf = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    session.add(
        AdminSession(
            user_id=user.id,
            token_hash=hash_token(token),
            csrf_hash=hash_token(csrf),
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    session.flush()
    return {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": csrf}


def add_org(
    session: Session, slug: str, now: datetime, contact: str | None = "dpo@example.org"
) -> dict[str, int]:
    """An organisation with a site, a beacon, a gateway, a draft campaign, an invite and a decision."""
    org = Organisation(slug=slug, name=f"{slug} e.V.", privacy_contact=contact)
    session.add(org)
    session.flush()
    from server.sites.models import Site

    site = Site(organisation_id=org.id, name=f"{slug} door", timezone="Europe/Berlin", language="de")
    session.add(site)
    session.flush()
    beacon = SiteBeacon(
        site_id=site.id, kind="ibeacon", identifier="f7826da6-4fa2-4e98-8024-bc5b71e0893e/1/1"
    )
    session.add(beacon)
    gateway = issue_enrolment_code(session, site, "window", now).gateway
    campaign = Campaign(
        organisation_id=org.id,
        name=f"{slug} helpers",
        kind="volunteer",
        status="draft",
        cta_url=f"https://{slug}.example.org/help",
    )
    session.add(campaign)
    session.flush()
    session.add(CampaignSite(campaign_id=campaign.id, site_id=site.id))
    session.add(
        CampaignVariant(
            campaign_id=campaign.id, language="de", title="Helfen?", body="Bitte.", cta_label="Ja"
        )
    )
    invite = Invite(
        organisation_id=org.id,
        email=f"new@{slug}.example",
        role="viewer",
        token_hash=hash_token(secrets.token_urlsafe(16)),
        expires_at=now + timedelta(days=7),
    )
    session.add(invite)
    decision = PromptDecision(
        site_id=site.id, campaign_id=campaign.id, outcome="suppressed", reason="quiet_hours", decided_at=now
    )
    session.add(decision)
    session.flush()
    session.add(Delivery(decision_id=decision.id, channel_kind="inbox", status="available"))
    endpoint = WebhookEndpoint(
        organisation_id=org.id,
        url=f"https://hooks.{slug}.example.org/nahbar",
        event_types=["prompt.accepted"],
        secret_sealed=KeySealer("test-secret-key-that-is-long-enough-0123456789").seal(b"whsec_x", b"unused"),
    )
    session.add(endpoint)
    session.add(
        AuditEntry(
            actor="cli",
            organisation_id=org.id,
            action="seed",
            entity="organisation",
            entity_id=str(org.id),
            at=now,
        )
    )
    session.flush()
    return {
        "org_id": org.id,
        "site_id": site.id,
        "beacon_id": beacon.id,
        "gateway_id": gateway.id,
        "campaign_id": campaign.id,
        "invite_id": invite.id,
        "endpoint_id": endpoint.id,
    }


@dataclass
class World:
    ids: dict[str, dict[str, int]]
    users: dict[str, AdminUser]
    headers: dict[str, dict[str, str]]
    invite_token: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def make_world(session: Session, now: datetime) -> World:
    """Charity A (owner, editor, viewer, one more member) and charity B (owner); plus the operator."""
    session.add(PlatformSettings())
    a, b = add_org(session, "alpha", now), add_org(session, "beta", now)
    users = {
        "operator": add_user(session, "op@nahbar.example", operator=True),
        "owner_a": add_user(session, "owner@alpha.example", roles={a["org_id"]: "owner"}),
        "editor_a": add_user(session, "editor@alpha.example", roles={a["org_id"]: "editor"}),
        "viewer_a": add_user(session, "viewer@alpha.example", roles={a["org_id"]: "viewer"}),
        "member_a": add_user(session, "member@alpha.example", roles={a["org_id"]: "viewer"}),
        "owner_b": add_user(session, "owner@beta.example", roles={b["org_id"]: "owner"}),
    }
    for side, owner in (("a", users["owner_a"]), ("b", users["owner_b"])):
        ids = a if side == "a" else b
        token = ApiToken(
            user_id=owner.id, name="script", token_hash=hash_token(secrets.token_urlsafe(16)), scopes=["read"]
        )
        session.add(token)
        session.flush()
        ids["token_id"] = token.id
        member = (
            session.query(Membership)
            .filter_by(user_id=users["member_a" if side == "a" else "owner_b"].id)
            .one()
        )
        ids["membership_id"] = member.id
        ids["user_id"] = users["member_a" if side == "a" else "owner_b"].id
    invite_token = secrets.token_urlsafe(16)
    session.add(
        Invite(
            organisation_id=a["org_id"],
            email="accept@alpha.example",
            role="viewer",
            token_hash=hash_token(invite_token),
            expires_at=now + timedelta(days=7),
        )
    )
    headers = {name: signed_in(session, user, now) for name, user in users.items()}
    session.commit()
    return World({"a": a, "b": b}, users, headers, invite_token)
