"""/mobile/v1: what phones call. Each module holds one part; this one assembles them."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api import (
    capabilities,
    channels,
    inbox,
    optin,
    pages,
    paired_device,
    preferences,
    privacy,
    responses,
    sightings,
)

router = APIRouter(prefix="/mobile/v1", tags=["mobile"])
PARTS = (
    capabilities,
    optin,
    inbox,
    preferences,
    channels,
    responses,
    privacy,
    pages,
    sightings,
    paired_device,
)
for part in PARTS:
    router.include_router(part.router)
