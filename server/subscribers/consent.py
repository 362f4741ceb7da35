"""Versions of the consent text a subscriber can agree to."""

from __future__ import annotations

from typing import Final

CURRENT_CONSENT_VERSION: Final = "2026-11"
KNOWN_CONSENT_VERSIONS: Final = frozenset({CURRENT_CONSENT_VERSION})
