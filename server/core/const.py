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


class TokenScope(StrEnum):
    """What an admin API token may do: `read` lists and shows, `write` also changes."""

    READ = "read"
    WRITE = "write"


class EventKind(StrEnum):
    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


class Outcome(StrEnum):
    PROMPTED = "prompted"
    SUPPRESSED = "suppressed"
    TEST = "test"  # a test send to a paired test device: in its inbox, but counted by no cap or statistic


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


# How the policy sees an active campaign of an organisation the operator suspended: not running.
SUSPENDED: Final = "suspended"

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

# Admin accounts (issue 5); session lifetime, lockout and Secure cookies are Settings (cookie_secure, ...).
MIN_PASSWORD_LENGTH: Final = 12
SESSION_COOKIE: Final = "nahbar_session"
CSRF_COOKIE: Final = "nahbar_csrf"  # readable by the web UI, which echoes it in the X-CSRF-Token header
CSRF_HEADER: Final = "X-CSRF-Token"
INVITE_LIFETIME_S: Final = 7 * 24 * 3600
# Ended sessions, tokens and invites, and login attempts, are deleted this long after they ended.
ACCOUNT_RECORDS_KEEP_DAYS: Final = 30
API_TOKEN_MAX_DAYS: Final = 366
ADMIN_PAGE_MAX: Final = 200
ADMIN_PAGE_DEFAULT: Final = 50
# Campaign limits that protect the people prompted (DESIGN.md, "Prompt policy defaults").
CTA_URL_MAX: Final = 2000
VARIANT_TITLE_MAX: Final = 80
VARIANT_BODY_MAX: Final = 240
VARIANT_CTA_MAX: Final = 40
# Delivery (issue 7): the outbox sender and its sweep.
DELIVERY_MAX_ATTEMPTS: Final = 8
DELIVERY_BACKOFF_BASE_S: Final = 2.0
DELIVERY_BACKOFF_MAX_S: Final = 120.0
DELIVERY_SWEEP_EVERY_S: Final = 5.0
DELIVERY_BATCH: Final = 50
# A push request may take this long to connect (at most; NAHBAR_PUSH_TIMEOUT_SECONDS when shorter), then
# NAHBAR_PUSH_TIMEOUT_SECONDS for the answer.
PUSH_CONNECT_TIMEOUT_S: Final = 5.0
# The outbox claims this many sends per sender thread, so a claimed send may wait for one push before its own.
CLAIMS_PER_SENDER: Final = 2
# Between a push's answer and its record in the database: the outbox's next turn, one short transaction.
LEASE_MARGIN_S: Final = 2.0
