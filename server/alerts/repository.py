"""Queries of the alert job: what it watches, the conditions it remembers, whom it writes to, its outbox."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import CursorResult, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from server.alerts.models import AlertMail, AlertState
from server.campaigns.models import Campaign, CampaignSite
from server.core.const import CampaignStatus, Outcome, Role
from server.prompts.models import PromptDecision
from server.sites.models import Gateway, Site, SiteBeacon
from server.tenancy.models import AdminUser, Membership, Organisation

# Any number that no other advisory lock of the server uses: the alert job's, held to its transaction's end.
_EVALUATION_LOCK: Final = 0x6E616862_616C7274  # "nahb" "alrt", below 2**63


def lock_evaluation(session: Session) -> None:
    """Let one worker at a time decide what to raise (on PostgreSQL; SQLite has one writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVALUATION_LOCK})


def watched_gateways(session: Session) -> Sequence[tuple[Gateway, Site]]:
    """Every enrolled gateway that is not revoked, with its site."""
    rows = session.execute(
        select(Gateway, Site)
        .join(Site, Site.id == Gateway.site_id)
        .where(Gateway.enrolled_at.is_not(None), Gateway.revoked_at.is_(None))
        .order_by(Gateway.id)
    )
    return [(row[0], row[1]) for row in rows]


def site_beacons(session: Session) -> Sequence[tuple[SiteBeacon, Site]]:
    """Every site's own beacons, with the site."""
    rows = session.execute(
        select(SiteBeacon, Site).join(Site, Site.id == SiteBeacon.site_id).order_by(SiteBeacon.id)
    )
    return [(row[0], row[1]) for row in rows]


def budgeted_campaigns(session: Session, now: datetime) -> Sequence[Campaign]:
    """Running campaigns with a daily budget of at least one prompt."""
    return session.scalars(
        select(Campaign)
        .where(
            Campaign.status == CampaignStatus.ACTIVE,
            Campaign.daily_budget > 0,
            or_(Campaign.starts_at.is_(None), Campaign.starts_at <= now),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
        )
        .order_by(Campaign.id)
    ).all()


def campaign_zones(session: Session, campaign_ids: Collection[int]) -> dict[int, set[str]]:
    """The time zones of each campaign's sites (sites without one never prompt, so they are left out)."""
    zones: dict[int, set[str]] = defaultdict(set)
    if not campaign_ids:
        return zones
    rows = session.execute(
        select(CampaignSite.campaign_id, Site.timezone)
        .join(Site, Site.id == CampaignSite.site_id)
        .where(CampaignSite.campaign_id.in_(campaign_ids), Site.timezone.is_not(None))
    )
    for campaign_id, zone in rows:
        if zone is not None:
            zones[campaign_id].add(zone)
    return zones


def prompts_on_days(
    session: Session, campaign_ids: Collection[int], days: Collection[date]
) -> dict[tuple[int, date], int]:
    """Prompts each campaign gave on each of these (site-local) days: what its daily budget counts."""
    if not campaign_ids or not days:
        return {}
    rows = session.execute(
        select(PromptDecision.campaign_id, PromptDecision.local_day, func.count())
        .where(
            PromptDecision.campaign_id.in_(campaign_ids),
            PromptDecision.local_day.in_(days),
            PromptDecision.outcome == Outcome.PROMPTED,
        )
        .group_by(PromptDecision.campaign_id, PromptDecision.local_day)
    )
    return {(cid, day): n for cid, day, n in rows if cid is not None and day is not None}


def states(session: Session) -> Sequence[AlertState]:
    """Every condition that held at the last evaluation."""
    return session.scalars(select(AlertState)).all()


def organisation_names(session: Session, org_ids: Collection[int]) -> dict[int, str]:
    if not org_ids:
        return {}
    rows = session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids)))
    return {row[0]: row[1] for row in rows}


def owner_emails(session: Session, org_ids: Collection[int]) -> dict[int, list[str]]:
    """The e-mail addresses of each organisation's owners whose accounts are not disabled."""
    owners: dict[int, list[str]] = defaultdict(list)
    if not org_ids:
        return owners
    rows = session.execute(
        select(Membership.organisation_id, AdminUser.email)
        .join(AdminUser, AdminUser.id == Membership.user_id)
        .where(
            Membership.organisation_id.in_(org_ids),
            Membership.role == Role.OWNER,
            AdminUser.disabled_at.is_(None),
        )
        .order_by(Membership.organisation_id, AdminUser.email)
    )
    for org_id, email in rows:
        owners[org_id].append(email)
    return owners


def site_languages(session: Session, org_ids: Collection[int]) -> dict[int, set[str]]:
    """The languages of each organisation's sites."""
    languages: dict[int, set[str]] = defaultdict(set)
    if not org_ids:
        return languages
    rows = session.execute(
        select(Site.organisation_id, Site.language).where(Site.organisation_id.in_(org_ids)).distinct()
    )
    for org_id, language in rows:
        languages[org_id].add(language)
    return languages


# --- The mail outbox ---------------------------------------------------------------------------------------


def due_mails(session: Session, now: datetime, limit: int) -> Sequence[int]:
    """Ids of mails due to be sent (or whose sender's claim lapsed), oldest first."""
    return session.scalars(
        select(AlertMail.id)
        .where(
            AlertMail.next_attempt_at <= now,
            or_(AlertMail.claimed_until.is_(None), AlertMail.claimed_until < now),
        )
        .order_by(AlertMail.id)
        .limit(limit)
    ).all()


def claim_mail(session: Session, mail_id: int, now: datetime, until: datetime) -> AlertMail | None:
    """Claim one due mail for this sender until `until` (one conditional UPDATE: two workers cannot both
    claim it); the claimed mail, or None when another sender has it or it was sent meanwhile."""
    result = session.execute(
        update(AlertMail)
        .where(
            AlertMail.id == mail_id,
            AlertMail.next_attempt_at <= now,
            or_(AlertMail.claimed_until.is_(None), AlertMail.claimed_until < now),
        )
        .values(claimed_until=until, attempts=AlertMail.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if not (isinstance(result, CursorResult) and result.rowcount == 1):
        return None
    return session.get(AlertMail, mail_id, populate_existing=True)


def record_mail(session: Session, mail_id: int, **values: Any) -> None:
    session.execute(
        update(AlertMail)
        .where(AlertMail.id == mail_id)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )


def delete_finished_mails(session: Session, before: datetime) -> int:
    """Delete mails sent or given up that were written before `before`."""
    result = session.execute(
        delete(AlertMail)
        .where(AlertMail.next_attempt_at.is_(None), AlertMail.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount if isinstance(result, CursorResult) else 0
