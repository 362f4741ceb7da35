"""The live decision: load the person's history, decide, record; the daily cap is a database invariant."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.const import Outcome
from server.policy import repository
from server.policy.decide import Decision, Person, Reason, Situation, decide
from server.presence.models import ProximityEvent, Visit
from server.prompts.deliveries import create_deliveries
from server.prompts.models import PromptDecision
from server.sites.models import Site
from server.subscribers.models import Subscriber

log = logging.getLogger("nahbar.decisions")


def decide_for_visit(
    session: Session, subscriber: Subscriber, site: Site, visit: Visit, event: ProximityEvent, ttl_s: int
) -> PromptDecision:
    """Decide whether to prompt this person during this visit, and record the decision with its reason."""
    now = event.received_at
    situation = Situation(
        now=now,
        site_id=site.id,
        site_timezone=site.timezone,
        site_language=site.language,
        max_per_day=repository.platform_settings(session).max_prompts_per_day,
    )
    campaigns = repository.campaigns_at_site(session, site.id)
    excluded = repository.exclusions(session, subscriber.id)
    quiet = (subscriber.preferences or {}).get("quiet_hours")
    person = Person(
        subscriber.id,
        frozenset(subscriber.scopes),
        subscriber.language,
        prompts_today=0,
        excluded_sites=excluded.sites,
        excluded_organisations=excluded.organisations,
        quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
    )
    first = decide(person, campaigns, situation)
    if first.local_day is not None:
        used = repository.prompts_on_day(session, subscriber.id, first.local_day)
        person = replace(person, prompts_today=used)
        decision = decide(person, campaigns, situation)
    else:
        decision, used = first, 0
    record = _record(session, decision, subscriber, visit, event, slot=used, ttl_s=ttl_s)
    if record is None:  # another worker took the last slot between our count and our insert
        record = _record(
            session,
            Decision(Reason.GLOBAL_DAILY_CAP, decision.local_day),
            subscriber,
            visit,
            event,
            used,
            ttl_s,
        )
        assert record is not None
    visit.decided_at = now
    log.info(
        "decision %s",
        record.reason,
        extra={"site": site.name, "campaign_id": record.campaign_id, "subscriber": str(subscriber.id)[:8]},
    )
    return record


def _record(
    session: Session,
    decision: Decision,
    subscriber: Subscriber,
    visit: Visit,
    event: ProximityEvent,
    slot: int,
    ttl_s: int,
) -> PromptDecision | None:
    row = PromptDecision(
        subscriber_id=subscriber.id,
        site_id=visit.site_id,
        visit_id=visit.id,
        event_id=event.id,
        campaign_id=decision.campaign_id,
        variant_id=decision.variant_id,
        outcome=Outcome.PROMPTED if decision.prompted else Outcome.SUPPRESSED,
        reason=decision.reason,
        decided_at=event.received_at,
        local_day=decision.local_day if decision.prompted else None,
        day_slot=slot if decision.prompted else None,
        expires_at=event.received_at + timedelta(seconds=ttl_s) if decision.prompted else None,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    if decision.prompted:
        create_deliveries(session, row)
    return row
