"""Explain: would this person be prompted at this site now, and if not, why; sends nothing."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit import service as audit
from server.core import const
from server.core.errors import NotFound
from server.core.security import pseudonym
from server.policy.decide import Decision
from server.policy.live import Decider, SiteRef
from server.policy.repository import PersonRow
from server.policy.service import decide_now
from server.presence.models import ProximityEvent
from server.prompts.models import PromptDecision
from server.sites.models import Site
from server.subscribers.models import Subscriber
from server.tenancy.scope import Principal


def find_subscriber(session: Session, secret_key: str, organisation_id: int, who: str) -> Subscriber | None:
    """By internal id, or by the pseudonym this charity's support lists show (people seen at its sites)."""
    seen = (
        select(ProximityEvent.subscriber_id)
        .join(Site, Site.id == ProximityEvent.site_id)
        .where(Site.organisation_id == organisation_id)
        .union(
            select(PromptDecision.subscriber_id)
            .join(Site, Site.id == PromptDecision.site_id)
            .where(Site.organisation_id == organisation_id, PromptDecision.subscriber_id.is_not(None))
        )
    )
    for (subscriber_id,) in session.execute(seen):
        if subscriber_id is not None and who in (
            str(subscriber_id),
            pseudonym(secret_key, organisation_id, subscriber_id),
        ):
            return session.get(Subscriber, subscriber_id)
    return None


def explain_newcomer(session: Session, site: Site, now: datetime, dwell_s: float) -> Decision:
    """The decision for someone new here (every scope, no history): the site's and campaigns' own checks,
    loaded and decided the way the live path does."""
    newcomer = PersonRow(uuid.UUID(int=0), sorted(const.CONSENT_SCOPES), site.language, None)
    where = SiteRef.of(site)
    return Decider.load(session, [newcomer], [(where, now)]).decide(newcomer.id, where, now, dwell_s)


def explain_for_admin(
    session: Session,
    scope: Principal,
    site_id: int,
    who: str | None,
    dwell_s: float,
    now: datetime,
    secret: str,
) -> tuple[Site, Decision, str | None]:
    """Would this person (a pseudonym from the organisation's lists, or nobody: someone new) be asked at this
    site now, and why not: the decision with every check, and the person's pseudonym. Sends nothing; the
    look-up is a read about a person and is audited."""
    site = session.get(Site, site_id)
    if site is None or not scope.sees(site.organisation_id):
        raise NotFound(f"No site has id {site_id} among the sites you can see.")
    if who is None:
        decision, alias = explain_newcomer(session, site, now, dwell_s), None
    else:
        person = find_subscriber(session, secret, site.organisation_id, who)
        if person is None:
            raise NotFound(
                "Nobody by that id was seen at this organisation's sites; use a pseudonym from /decisions."
            )
        alias = pseudonym(secret, site.organisation_id, person.id)
        decision = explain(session, person, site, now, dwell_s)
    audit.record(
        session,
        scope,
        "policy.explain",
        "site",
        site.id,
        site.organisation_id,
        None,
        {"person": alias, "dwell_s": dwell_s, "reason": decision.reason},
        now,
    )
    return site, decision, alias


def explain(session: Session, subscriber: Subscriber, site: Site, now: datetime, dwell_s: float) -> Decision:
    """The decision the live path would take now (without its lock, and recording nothing)."""
    return decide_now(session, subscriber, site, now, dwell_s)
