"""/mobile/v1/me/push-channels: where prompts are pushed (Web Push, FCM, APNs); the inbox always works."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from mobile_api.schemas import (
    ApnsChannelCreate,
    FcmChannelCreate,
    PushChannelCreate,
    PushChannelPublic,
    PushChannelsPublic,
    RowId,
    WebPushChannelCreate,
)
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.subscribers import repository
from server.subscribers import service as subscribers
from server.subscribers.models import PushChannel

router = APIRouter()


def _public(channel: PushChannel) -> PushChannelPublic:
    return PushChannelPublic(
        id=channel.id,
        kind=channel.kind,
        endpoint=channel.endpoint,
        environment=(channel.keys or {}).get("environment"),
        created_at=channel.created_at,
        retired_at=channel.retired_at,
    )


def _endpoint_and_keys(body: PushChannelCreate) -> tuple[str, dict[str, Any]]:
    if isinstance(body, WebPushChannelCreate):
        return body.endpoint, body.keys.model_dump()
    if isinstance(body, ApnsChannelCreate):
        return body.token.lower(), {"environment": body.environment}
    assert isinstance(body, FcmChannelCreate)
    return body.token, {}


@router.get("/me/push-channels", response_model=PushChannelsPublic, operation_id="mobile_list_push_channels")
def list_push_channels(subscriber: CurrentDevice, session: SessionDep) -> PushChannelsPublic:
    """Your push channels, retired ones included (the push service said they are gone)."""
    return PushChannelsPublic(channels=[_public(c) for c in repository.push_channels(session, subscriber.id)])


@router.post(
    "/me/push-channels",
    response_model=PushChannelPublic,
    status_code=201,
    operation_id="mobile_add_push_channel",
    responses={
        200: {"description": "The same endpoint was registered before; its keys were updated"},
        409: {
            "description": "channel_not_enabled: this server cannot push to this kind of channel; "
            "too_many_push_channels: this phone has as many push channels as allowed"
        },
        422: {"description": "Invalid, or push_endpoint_not_public: a Web Push endpoint off the internet"},
    },
)
def add_push_channel(
    body: PushChannelCreate,
    subscriber: CurrentDevice,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> PushChannelPublic:
    """Register a Web Push subscription, an FCM token or an APNs token, of a kind this server offers
    (GET /mobile/v1/capabilities). Sending the same one again is safe."""
    endpoint, keys = _endpoint_and_keys(body)
    channel, created = subscribers.add_push_channel(
        session,
        subscriber.id,
        body.kind,
        endpoint,
        keys,
        offered=runtime.push.kinds,
        allow_private_hosts=runtime.settings.allow_private_push_hosts,
    )
    if not created:
        response.status_code = 200
    return _public(channel)


@router.delete("/me/push-channels/{channel_id}", status_code=204, operation_id="mobile_remove_push_channel")
def remove_push_channel(channel_id: RowId, subscriber: CurrentDevice, session: SessionDep) -> Response:
    """Stop pushing to this channel (prompts stay in the inbox)."""
    subscribers.remove_push_channel(session, subscriber.id, channel_id)
    return Response(status_code=204)
