"""Versions of the consent text a subscriber can agree to, each in German and English."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from server.subscribers.texts import Document, consent_2026_11

# A published version is never edited: a changed text is a new version, and people agree to it again.
CONSENT_TEXTS: Final[Mapping[str, Mapping[str, Document]]] = MappingProxyType(
    {consent_2026_11.VERSION: MappingProxyType({"de": consent_2026_11.DE, "en": consent_2026_11.EN})}
)
CURRENT_CONSENT_VERSION: Final = consent_2026_11.VERSION
KNOWN_CONSENT_VERSIONS: Final = frozenset(CONSENT_TEXTS)
