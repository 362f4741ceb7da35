"""One provider per channel kind, built from settings; a provider without credentials is disabled."""

from __future__ import annotations

import logging

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


__all__ = ["Provider", "ProviderUnavailable", "build_providers"]
