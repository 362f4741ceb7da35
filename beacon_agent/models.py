"""Values the agent's layers hand each other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

EventKind = Literal["enter", "dwell", "exit"]


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """One enter/dwell/exit of one rotating identifier: all the agent ever stores or sends about a phone.

    `id` is the idempotency key (unique per gateway); `eid` is the 8-byte Eddystone-EID in lowercase hex.
    No MAC address and nothing of any other advertisement is part of it, by construction.
    """

    id: str
    kind: EventKind
    eid: str
    observed_at: datetime
    rssi: float | None = None
    distance_m: float | None = None
    dwell_s: float = 0.0

    def to_wire(self) -> dict[str, object]:
        """The JSON object /gateway/v1/events takes."""
        return {
            "id": self.id,
            "kind": self.kind,
            "eid": self.eid,
            "observed_at": self.observed_at.isoformat(),
            "rssi": self.rssi,
            "distance_m": self.distance_m,
            "dwell_s": self.dwell_s,
        }
