"""The admin API under /admin/api/v1, assembled from each domain's admin endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from server.accounts.endpoints import router as accounts_router
from server.admin.support import router as support_router
from server.audit.endpoints import router as audit_router
from server.campaigns.endpoints import router as campaigns_router
from server.sites.admin_endpoints import router as sites_router
from server.tenancy.endpoints import router as tenancy_router

ADMIN_PREFIX = "/admin/api/v1"

router = APIRouter(prefix=ADMIN_PREFIX)
for part in (accounts_router, tenancy_router, sites_router, campaigns_router, support_router, audit_router):
    router.include_router(part)
