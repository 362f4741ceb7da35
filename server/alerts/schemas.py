"""What an alert is: its condition, its subject, and the facts its e-mail and webhook say."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Condition(StrEnum):
    GATEWAY_SILENT = "gateway_silent"  # no heartbeat (never, or late) for NAHBAR_ALERT_GATEWAY_MINUTES
    SCANNER_FAILING = "scanner_failing"  # heartbeats arrive, the Bluetooth scan is down, as long
    BATTERY_LOW = "battery_low"  # a site beacon's TLM battery below NAHBAR_ALERT_BATTERY_MV
    BEACON_UNHEARD = "beacon_unheard"  # a site beacon no gateway heard for NAHBAR_ALERT_BEACON_UNHEARD_HOURS
    BUDGET_EXHAUSTED = "budget_exhausted"  # a campaign gave every prompt of today's budget


class SubjectKind(StrEnum):
    GATEWAY = "gateway"
    BEACON = "beacon"
    CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition that just became due to be told: once, until it clears and recurs.

    `facts` hold names and figures of the charity's own things (gateway, site, beacon, campaign), never
    anything of a passer-by: they go into the e-mail and to the organisation's webhooks as they are."""

    organisation_id: int
    subject_kind: SubjectKind
    subject_id: int
    condition: Condition
    since: datetime
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        """The webhook event: `alert.gateway_silent`, ..."""
        return f"alert.{self.condition.value}"

    def data(self) -> dict[str, Any]:
        """The webhook payload: JSON types only."""
        facts = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.facts.items()}
        return {
            "condition": self.condition.value,
            "subject": {"kind": self.subject_kind.value, "id": self.subject_id},
            "since": self.since.isoformat(),
            **facts,
        }
