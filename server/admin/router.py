"""The admin API under /admin/api/v1, assembled from each domain's admin endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.accounts.endpoints import router as accounts_router
from server.accounts.endpoints import users_router
from server.audit.endpoints import router as audit_router
from server.campaigns.endpoints import router as campaigns_router
from server.campaigns.trial_send_endpoints import router as trial_send_router
from server.core.errors import PROBLEM_JSON
from server.impact.admin_endpoints import router as impact_router
from server.policy.admin_endpoints import router as policy_router
from server.policy.admin_simulate import router as simulate_router
from server.prompts.admin_endpoints import router as support_router
from server.sites.admin_endpoints import router as sites_router
from server.tenancy.endpoints import router as tenancy_router
from server.webhooks.admin_endpoints import router as webhooks_router

ADMIN_PREFIX = "/admin/api/v1"


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}


# Every admin answer but the happy one is RFC 9457 problem+json with a stable `code`.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("Not logged in, or the session or token has ended (code: unauthorized)"),
    403: _problem(
        "Logged in but not allowed: role, token scope or CSRF (forbidden, insufficient_scope, csrf_failed)"
    ),
    404: _problem("No such object, or it belongs to another organisation (not_found)"),
    412: _problem("If-Match names an older version; read again and retry (precondition_failed)"),
    422: _problem(
        "Invalid request or a broken rule; `errors` names the fields (validation_failed, rule_violation)"
    ),
    428: _problem("The update needs If-Match with the ETag last read (precondition_required)"),
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
