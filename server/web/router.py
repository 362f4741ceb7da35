"""The pages for people under /admin (and a site's public page), assembled from one module per domain."""

from __future__ import annotations

from fastapi import APIRouter

from server.web import accounts, invite, overview

router = APIRouter(include_in_schema=False)
for part in (accounts.router, overview.router, invite.router):
    router.include_router(part)
