"""Everything stored about one subscriber, gathered for the export (GDPR Art. 15 and 20)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from server.campaigns.models import PairedDevice
from server.policy.models import PersonHistory
from server.presence.models import ProximityEvent, Visit
from server.prompts import repository as prompts
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.subscribers import repository
from server.subscribers.models import ConsentRecord, Exclusion, PushChannel, Subscriber

NOTES: Final = (
    "The device token is stored only as a SHA-256 hash, so it cannot be shown; your phone holds the token.",
    "The Eddystone-EID identity key is stored encrypted with the server's key, only to recognise your "
    "phone's rotating identifier; your phone holds the key itself.",
    "Nahbar stores no name, e-mail address, phone number, MAC address or location other than the charity's "
    "site where a gateway saw your phone.",
    "Proximity events and decisions are deleted after the retention period; daily counts without any link to "
    "you remain.",
    "To keep its limits on how often you are asked, Nahbar keeps your prompts of the last 30 days, the "
    "latest prompt of each campaign, and which campaigns you dismissed or accepted (history) until you "
    "withdraw.",
)


@dataclass(frozen=True, slots=True)
class Everything:
    subscriber: Subscriber
    consent_records: Sequence[ConsentRecord]
    push_channels: Sequence[PushChannel]
    exclusions: Sequence[Exclusion]
    proximity_events: Sequence[ProximityEvent]
    visits: Sequence[Visit]
    decisions: Sequence[PromptDecision]
    deliveries: Sequence[Delivery]
    responses: Sequence[PromptResponse]
    test_devices: Sequence[PairedDevice]
    history: PersonHistory | None


def everything(session: Session, subscriber: Subscriber) -> Everything:
    """Every row that refers to the subscriber (tests/test_erasure.py checks the same set table by table)."""
    sid = subscriber.id
    return Everything(
        subscriber=subscriber,
        consent_records=repository.consent_records(session, sid),
        push_channels=repository.push_channels(session, sid),
        exclusions=[exclusion for exclusion, _name in repository.exclusions(session, sid)],
        proximity_events=repository.proximity_events(session, sid),
        visits=repository.visits(session, sid),
        decisions=prompts.decisions(session, sid),
        deliveries=prompts.deliveries(session, sid),
        responses=prompts.responses(session, sid),
        test_devices=repository.test_devices(session, sid),
        history=session.get(PersonHistory, sid),
    )
