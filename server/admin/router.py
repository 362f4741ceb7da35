"""The admin API under /admin/api/v1, assembled from each domain's admin endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.accounts.endpoints import router as accounts_router
from server.accounts.endpoints import users_router
from server.audit.endpoints import router as audit_router
from server.campaigns.endpoints import router as campaigns_router
from server.campaigns.trial_send_endpoints import router as trial_send_router
from server.impact.admin_endpoints import router as impact_router
from server.policy.admin_endpoints import router as policy_router
from server.policy.admin_simulate import router as simulate_router
from server.prompts.admin_endpoints import router as support_router
from server.sites.admin_endpoints import router as sites_router
from server.tenancy.endpoints import router as tenancy_router
from server.webhooks.admin_endpoints import router as webhooks_router

ADMIN_PREFIX = "/admin/api/v1"


# Every admin answer but the happy one is RFC 9457 problem+json with a stable `code` (server/api/openapi.py
# documents each as ProblemDetails, and adds 412/428 where a route takes If-Match).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in, or the session or token has ended (unauthorized)"},
    403: {
        "description": "Logged in but not allowed: role, token scope or CSRF "
        "(forbidden, insufficient_scope, csrf_failed)"
    },
    404: {"description": "No such object, or it belongs to another organisation (not_found)"},
    422: {
        "description": "Invalid request or a broken rule; `errors` names the fields "
        "(validation_failed, rule_violation)"
    },
}

router = APIRouter(prefix=ADMIN_PREFIX, responses=PROBLEMS)
for part in (
    accounts_router,
    users_router,
    tenancy_router,
    sites_router,
    campaigns_router,
    support_router,
    audit_router,
    policy_router,
    simulate_router,
    trial_send_router,
    impact_router,
    webhooks_router,
):
    router.include_router(part)
