"""/mobile/v1/capabilities: what this server offers an app before it registers anything (public)."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api.schemas import CapabilitiesPublic
from server.api.deps import RuntimeDep
from server.core.const import LANGUAGES, ChannelKind

router = APIRouter()


@router.get("/capabilities", response_model=CapabilitiesPublic, operation_id="mobile_capabilities")
def capabilities(runtime: RuntimeDep) -> CapabilitiesPublic:
    """The push channels this server can send to (register only these), Web Push's VAPID public key, and
    the languages prompts come in. The inbox always works."""
    offer = runtime.push
    kinds = [kind.value for kind in ChannelKind if kind.value in offer.kinds]
    return CapabilitiesPublic(
        push_channels=kinds, webpush_public_key=offer.vapid_public_key, languages=list(LANGUAGES)
    )
