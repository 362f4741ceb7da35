"""The compact history the policy keeps per person (`PersonHistory`), and how it changes.

What `decide` needs of the past, and no more: the prompts of the last 30 days (the daily, weekly and monthly
caps, and the charity's cooldown while it is shorter than that), each campaign's latest prompt however old
("once", the charity's longer cooldowns: a charity's latest prompt is the latest of its campaigns'), the
latest dismissal per campaign (180 days, and "once" again after it) and the campaigns accepted (never
again). "Not here" and "not this charity" are the exclusions table's, forever. So a person's row holds at
most a month's prompts and one entry per campaign that ever asked them, whatever the platform's age, and
the raw decisions can go with the other raw rows when their retention period is over.

JSON forms: prompts `[[decided at, local day, charity, campaign], ...]` (ISO texts, oldest first); answers
`{"campaign": "decided at"}` (object keys are text in JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from server.policy.decide import PastPrompt

KEPT_FOR: Final = timedelta(days=30)  # the longest cap window (the month); older prompts are summarised


def compact(prompts: Iterable[PastPrompt], now: datetime) -> list[PastPrompt]:
    """The prompts worth keeping at `now`, oldest first: those of the last 30 days, and each campaign's
    latest. Later decisions only look further forward, so what is dropped here is never needed again."""
    ordered = sorted(prompts, key=lambda p: (p.at, p.campaign_id))
    latest = {p.campaign_id: n for n, p in enumerate(ordered)}
    since = now - KEPT_FOR
    return [p for n, p in enumerate(ordered) if p.at > since or latest[p.campaign_id] == n]


def prompts_doc(prompts: Iterable[PastPrompt], now: datetime) -> list[list[Any]]:
    """The prompts compacted at `now`, in their JSON form."""
    return [
        [p.at.astimezone(UTC).isoformat(), p.local_day.isoformat(), p.organisation_id, p.campaign_id]
        for p in compact(prompts, now)
    ]


def prompts_of(doc: Iterable[Any] | None) -> list[PastPrompt]:
    """The prompts from their JSON form."""
    return [
        PastPrompt(datetime.fromisoformat(at), date.fromisoformat(day), int(org), int(campaign))
        for at, day, org, campaign in doc or ()
    ]


def answers_of(doc: Mapping[str, Any] | None) -> dict[int, datetime]:
    """Campaign -> moment, from the JSON form of dismissals or acceptances."""
    return {int(campaign): datetime.fromisoformat(at) for campaign, at in (doc or {}).items()}


def answers_doc(answers: Mapping[int, datetime]) -> dict[str, str]:
    return {str(campaign): at.astimezone(UTC).isoformat() for campaign, at in sorted(answers.items())}
