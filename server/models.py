"""Imports every domain's models so that `Base.metadata` is complete (Alembic and tests use it)."""

from server.accounts.models import AdminSession, ApiToken, Invite, LoginAttempt
from server.alerts.models import AlertMail, AlertState
from server.audit.models import AuditEntry
from server.campaigns.models import Campaign, CampaignSite, CampaignVariant, PairedDevice, PairingCode
from server.core.db import Base
from server.impact.models import (
    ConfirmationSecret,
    ImpactDaily,
    ImpactFoldState,
    ImpactTally,
    ImpactVisitMark,
    OpenDataSettings,
    PromptReference,
)
from server.limits.models import RateLimitBucket
from server.policy.models import PersonHistory
from server.presence.models import DailyAggregate, ProximityEvent, Visit
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.sites.models import Gateway, Site, SiteBeacon
from server.subscribers.models import ConsentRecord, Exclusion, PushChannel, Subscriber
from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings
from server.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

__all__ = [
    "AdminSession",
    "AlertMail",
    "AlertState",
    "AdminUser",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Campaign",
    "CampaignSite",
    "CampaignVariant",
    "ConsentRecord",
    "DailyAggregate",
    "Delivery",
    "Exclusion",
    "Gateway",
    "Invite",
    "LoginAttempt",
    "Membership",
    "Organisation",
    "PersonHistory",
    "PlatformSettings",
    "PromptDecision",
    "PromptResponse",
    "RateLimitBucket",
    "ProximityEvent",
    "PushChannel",
    "Site",
    "SiteBeacon",
    "Subscriber",
    "PairedDevice",
    "PairingCode",
    "Visit",
    "ConfirmationSecret",
    "ImpactDaily",
    "ImpactFoldState",
    "ImpactTally",
    "ImpactVisitMark",
    "OpenDataSettings",
    "PromptReference",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
]
