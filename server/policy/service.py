"""The live decision: lock the person, load their history, decide, record. Explain uses the same steps
without the lock and without recording."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.const import Outcome
from server.policy import repository
from server.policy.decide import NOT_YET, Decision, OwnCaps, Person, Reason, Situation, decide, site_zone
from server.presence.models import ProximityEvent, Visit
from server.prompts.deliveries import create_deliveries
from server.prompts.models import PromptDecision
from server.sites.models import Site
from server.subscribers.models import Subscriber

log = logging.getLogger("nahbar.decisions")


def person_of(session: Session, subscriber: Subscriber) -> Person:
    """The person as the policy sees them: scopes, language, exclusions and their own stricter settings."""
    excluded = repository.exclusions(session, subscriber.id)
    preferences = subscriber.preferences or {}
    quiet = preferences.get("quiet_hours")
    caps = preferences.get("caps") or {}
    return Person(
        subscriber.id,
        frozenset(subscriber.scopes),
        subscriber.language,
        excluded_sites=excluded.sites,
        excluded_organisations=excluded.organisations,
        quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
        caps=OwnCaps(caps.get("per_day"), caps.get("per_week"), caps.get("per_month")),
    )


def decide_now(
    session: Session, subscriber: Subscriber, site: Site, now: datetime, dwell_s: float
) -> Decision:
    """The decision the policy takes for this person at this site now, from what the database holds."""
    zone = site_zone(site.timezone)
    day = now.astimezone(zone).date() if zone is not None else None
    campaigns = repository.campaigns_at_site(session, site.id)
    history = repository.history(session, subscriber.id, day, (c.id for c in campaigns))
    situation = Situation(
        now=now,
        site_id=site.id,
        site_timezone=site.timezone,
        site_language=site.language,
        dwell_s=dwell_s,
        policy=repository.policy(session),
    )
    return decide(person_of(session, subscriber), history, campaigns, situation)


def decide_for_visit(
    session: Session, subscriber: Subscriber, site: Site, visit: Visit, event: ProximityEvent, ttl_s: int
) -> PromptDecision:
    """Decide whether to prompt this person during this visit, and record the decision with its reason.

    The person's lock is held from loading the history to the commit, so concurrent sightings of one person
    (other gateways, other workers) decide one after the other on what the earlier ones recorded.
    """
    now = event.received_at
    repository.lock_person(session, subscriber.id)
    decision = decide_now(session, subscriber, site, now, visit.dwell_s)
    day = decision.local_day
    slot = repository.prompts_on_day(session, subscriber.id, day) if decision.prompted and day else 0
    record = _record(session, decision, subscriber, visit, event, slot=slot, ttl_s=ttl_s)
    if record is None:  # a second guard: the (subscriber, local_day, day_slot) key was taken after all
        fallback = Decision(Reason.GLOBAL_DAILY_CAP, decision.local_day)
        record = _record(session, fallback, subscriber, visit, event, slot, ttl_s)
        assert record is not None
    if decision.reason not in NOT_YET:
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
    if not decision.prompted:  # no day slot, so nothing to collide with: no savepoint needed
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    create_deliveries(session, row)
    return row
