"""The pages for people under /admin (and a site's public page), assembled from one module per domain."""

from __future__ import annotations

from fastapi import APIRouter

from server.web import (
    accounts,
    audit,
    campaigns,
    gateways,
    impact,
    invite,
    open_data,
    overview,
    platform,
    policy,
    sign,
    sites,
    tenancy,
    trial_send,
    webhooks,
)

router = APIRouter(include_in_schema=False)
for part in (
    accounts.router,
    overview.router,
    tenancy.router,
    audit.router,
    sites.router,
    sign.router,
    gateways.router,
    trial_send.router,
    campaigns.router,
    policy.router,
    impact.router,
    open_data.router,
    webhooks.router,
    platform.router,
    invite.router,
):
    router.include_router(part)
