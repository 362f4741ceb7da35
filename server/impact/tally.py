"""Appending to the impact ledger, in the transaction that records each fact (a sighting's visit and
decision, a push sent, an answer, a confirmation), so that a count exists exactly when its fact does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from server.core.bulk import insert_rows
from server.core.const import DeliveryStatus, Outcome
from server.core.listparam import in_list
from server.impact.models import ImpactTally
from server.policy.decide import site_zone
from server.prompts.models import Delivery, PromptDecision
from server.sites.models import Site

# The ledger's metrics. `outcome` is one per decision (its detail the reason); the fold turns it into one
# per visit. `delivered` is per push sent (detail: channel), `reached` once per prompt with a push sent.
SEEN: Final = "seen"
OUTCOME: Final = "outcome"
DELIVERED: Final = "delivered"
REACHED: Final = "reached"
RESPONSE: Final = "response"
CONFIRMED: Final = "confirmed"

_tallies = cast(Table, ImpactTally.__table__)


def local_day(timezone: str | None, at: datetime) -> date:
    """The site's calendar day at `at`; UTC's for a site without a (known) time zone."""
    zone = site_zone(timezone)
    return at.astimezone(zone or UTC).date()


@dataclass(frozen=True, slots=True)
class DecisionFact:
    """A recorded decision as the ledger counts it."""

    site_id: int
    timezone: str | None
    decided_at: datetime
    reason: str
    campaign_id: int | None
    variant_id: int | None
    visit_id: int | None


def _row(
    site_id: int,
    day: date,
    metric: str,
    detail: str = "",
    *,
    campaign_id: int | None = None,
    variant_id: int | None = None,
    visit_ref: int | None = None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "day": day,
        "campaign_id": campaign_id or 0,
        "variant_id": variant_id or 0,
        "metric": metric,
        "detail": detail,
        "n": 1,
        "visit_ref": visit_ref,
        "recorded_at": at,
    }


def append(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        insert_rows(session.connection(), _tallies, rows)


def sightings(
    session: Session,
    started: Iterable[tuple[int, str | None, datetime]],
    decided: Iterable[DecisionFact],
    now: datetime,
) -> None:
    """A batch of sightings: the visits it began (site, time zone, start) and the decisions it recorded."""
    rows = [_row(site_id, local_day(zone, at), SEEN, at=now) for site_id, zone, at in started]
    rows += [
        _row(
            d.site_id,
            local_day(d.timezone, d.decided_at),
            OUTCOME,
            d.reason,
            campaign_id=d.campaign_id,
            variant_id=d.variant_id,
            visit_ref=d.visit_id,
            at=now,
        )
        for d in decided
    ]
    append(session, rows)


_SENT = (
    select(
        Delivery.id,
        Delivery.decision_id,
        Delivery.channel_kind,
        PromptDecision.site_id,
        PromptDecision.campaign_id,
        PromptDecision.variant_id,
        PromptDecision.decided_at,
        PromptDecision.local_day,
        Site.timezone,
        Delivery.attempts,
    )
    .join(PromptDecision, PromptDecision.id == Delivery.decision_id)
    .join(Site, Site.id == PromptDecision.site_id)
    .where(
        in_list(Delivery.id, "ids"),
        Delivery.status == DeliveryStatus.SENT,
        PromptDecision.outcome == Outcome.PROMPTED,  # a test send counts nowhere
    )
)


def pushes_sent(session: Session, claims: Sequence[tuple[int, int]], now: datetime) -> None:
    """Pushes just recorded `sent` (delivery id, the claim's attempts): per channel, and once per prompt that
    had no push sent before. A claim another worker took over meanwhile (other attempts) is not counted."""
    if not claims:
        return
    attempts = dict(claims)
    rows = [
        row for row in session.execute(_SENT, {"ids": sorted(attempts)}) if attempts.get(row[0]) == row[9]
    ]
    if not rows:
        return
    batch = {row[0] for row in rows}
    decisions = sorted({row[1] for row in rows})
    before = {
        decision_id
        for (decision_id,) in session.execute(
            select(Delivery.decision_id).where(
                in_list(Delivery.decision_id, "decisions"),
                Delivery.status == DeliveryStatus.SENT,
                Delivery.id.not_in(batch),
            ),
            {"decisions": decisions},
        )
    }
    out: list[dict[str, Any]] = []
    reached: set[int] = set()
    for _, decision_id, channel, site_id, campaign_id, variant_id, decided_at, day, zone, _ in rows:
        day = day or local_day(zone, decided_at)
        out.append(
            _row(site_id, day, DELIVERED, channel, campaign_id=campaign_id, variant_id=variant_id, at=now)
        )
        if decision_id not in before and decision_id not in reached:
            reached.add(decision_id)
            out.append(_row(site_id, day, REACHED, campaign_id=campaign_id, variant_id=variant_id, at=now))
    append(session, out)


def _prompt_row(session: Session, decision: PromptDecision, metric: str, detail: str, now: datetime) -> None:
    zone = session.scalar(select(Site.timezone).where(Site.id == decision.site_id))
    day = decision.local_day or local_day(zone, decision.decided_at)
    append(
        session,
        [
            _row(
                decision.site_id,
                day,
                metric,
                detail,
                campaign_id=decision.campaign_id,
                variant_id=decision.variant_id,
                at=now,
            )
        ],
    )


def responded(session: Session, decision: PromptDecision, kind: str, now: datetime) -> None:
    """A person's first answer of this kind to a prompt; counted on the prompt's day."""
    if decision.outcome == Outcome.PROMPTED:
        _prompt_row(session, decision, RESPONSE, kind, now)


def confirmed(session: Session, decision: PromptDecision, now: datetime) -> None:
    """The charity confirmed that the person completed what the prompt asked."""
    if decision.outcome == Outcome.PROMPTED:
        _prompt_row(session, decision, CONFIRMED, "", now)
