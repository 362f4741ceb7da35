"""Domain constants shared across the server."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class CampaignKind(StrEnum):
    VOLUNTEER = "volunteer"
    DONATION = "donation"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class EventKind(StrEnum):
    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


class Outcome(StrEnum):
    PROMPTED = "prompted"
    SUPPRESSED = "suppressed"


class ResponseKind(StrEnum):
    OPENED = "opened"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    NOT_HERE = "not_here"
    NOT_THIS_ORG = "not_this_org"


class ChannelKind(StrEnum):
    INBOX = "inbox"
    WEBPUSH = "webpush"
    FCM = "fcm"
    APNS = "apns"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"  # in the inbox, waiting for the app to pull it
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"


CONSENT_SCOPES: Final = frozenset({CampaignKind.VOLUNTEER.value, CampaignKind.DONATION.value})
LANGUAGES: Final = ("de", "en")

# Platform maxima (DESIGN.md "Prompt policy defaults"): charities and people may only be stricter.
DEFAULT_MAX_PER_DAY: Final = 1
DEFAULT_MAX_PER_WEEK: Final = 2
DEFAULT_MAX_PER_MONTH: Final = 4
DEFAULT_ORG_COOLDOWN_DAYS: Final = 14
DEFAULT_DISMISS_COOLDOWN_DAYS: Final = 180
DEFAULT_MIN_DWELL_S: Final = 15
DEFAULT_MAX_DWELL_S: Final = 20 * 60
DEFAULT_QUIET_START: Final = "21:00"
DEFAULT_QUIET_END: Final = "08:00"
