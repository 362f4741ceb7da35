"""One provider per channel kind, built from settings; a provider without credentials is disabled."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from server.core.config import Settings
from server.core.const import ChannelKind
from server.delivery.providers.apns import ApnsProvider
from server.delivery.providers.base import Provider, ProviderUnavailable
from server.delivery.providers.fcm import FcmProvider
from server.delivery.providers.webpush import WebPushProvider

log = logging.getLogger("nahbar.delivery")


def build_providers(settings: Settings) -> dict[str, Provider]:
    """The push providers this deployment can use; the inbox needs none (the app pulls)."""
    providers: dict[str, Provider] = {}
    for kind, factory in (
        (ChannelKind.WEBPUSH, WebPushProvider.from_settings),
        (ChannelKind.FCM, FcmProvider.from_settings),
        (ChannelKind.APNS, ApnsProvider.from_settings),
    ):
        try:
            providers[kind] = factory(settings)
        except ProviderUnavailable as exc:
            log.warning("%s push disabled: %s; prompts still reach the app's inbox", kind, exc)
    return providers


@dataclass(frozen=True, slots=True)
class PushOffer:
    """What phones may register: the channel kinds this server can push to, and Web Push's VAPID key."""

    kinds: frozenset[str] = frozenset()
    vapid_public_key: str | None = None  # base64url: the browser's applicationServerKey

    @classmethod
    def of(cls, providers: Mapping[str, Provider]) -> PushOffer:
        webpush = providers.get(ChannelKind.WEBPUSH)
        key = webpush.public_key if isinstance(webpush, WebPushProvider) else None
        return cls(frozenset(providers), key)


__all__ = ["Provider", "ProviderUnavailable", "PushOffer", "build_providers"]
