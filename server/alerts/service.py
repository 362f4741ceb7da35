"""The alert rules: which conditions hold, which of them are due to be told, and telling them (an e-mail to
the organisation's owners, written to the mail outbox, and the hooks in `ON_ALERT`, e.g. its webhooks)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from server.alerts import repository
from server.alerts.models import AlertMail, AlertState
from server.alerts.schemas import Alert, Condition, SubjectKind
from server.alerts.texts import compose
from server.core.config import Settings
from server.core.const import LANGUAGES
from server.sites.admin_service import health
from server.webhooks import service as webhooks

log = logging.getLogger("nahbar.alerts")

# Called for every alert raised, in the transaction that records it, with the webhook service's signature
# `enqueue(session, organisation_id, event_type, data)`: an alert and what it sets off commit together.
AlertHook = Callable[[Session, int, str, dict[str, Any]], object]

# The alerts a charity's own systems hear of by webhook. A campaign out of budget is not among them: the
# impact fold sends `campaign.budget_exhausted` itself, once a campaign and day.
WEBHOOK_EVENTS: Final = {
    f"alert.{Condition.GATEWAY_SILENT}": "gateway.needs_attention",
    f"alert.{Condition.SCANNER_FAILING}": "gateway.needs_attention",
    f"alert.{Condition.BATTERY_LOW}": "gateway.needs_attention",
    f"alert.{Condition.BEACON_UNHEARD}": "gateway.needs_attention",
}


def to_webhooks(session: Session, organisation_id: int, event_type: str, data: dict[str, Any]) -> object:
    """An alert to the organisation's webhooks that asked for it (in the alert's transaction)."""
    webhook_event = WEBHOOK_EVENTS.get(event_type)
    if webhook_event is None:
        return 0
    return webhooks.enqueue(session, organisation_id, webhook_event, data)


ON_ALERT: list[AlertHook] = [to_webhooks]

_Key = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class Observation:
    """A condition holding now. `since`: when it began, where that is known (else when the job first saw
    it); it is told once it has held for `grace`."""

    organisation_id: int
    subject_kind: SubjectKind
    subject_id: int
    condition: Condition
    since: datetime | None = None
    grace: timedelta = timedelta(0)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> _Key:
        return (self.subject_kind.value, self.subject_id, self.condition.value)


def _beacon_name(kind: str, identifier: str, label: str | None) -> str:
    return label or f"{kind} {identifier}"


def _gateways(session: Session, settings: Settings, now: datetime) -> list[Observation]:
    grace = timedelta(minutes=settings.alert_gateway_minutes)
    found = []
    for gateway, site in repository.watched_gateways(session):
        state = health(gateway, now)
        facts: dict[str, Any] = {"gateway": gateway.name, "site": site.name, "zone": site.timezone}
        if state in ("silent", "stale"):
            since = gateway.last_seen_at or gateway.enrolled_at
            facts["never"] = gateway.last_seen_at is None
            condition = Condition.GATEWAY_SILENT
        elif state == "scanner_failing":
            since = None  # a heartbeat does not say when the scan went down: from the job's first look
            facts["error"] = (gateway.last_heartbeat or {}).get("scanner_error")
            condition = Condition.SCANNER_FAILING
        else:
            continue
        found.append(
            Observation(
                gateway.organisation_id, SubjectKind.GATEWAY, gateway.id, condition, since, grace, facts
            )
        )
    return found


def _beacons(session: Session, settings: Settings, now: datetime) -> list[Observation]:
    unheard = timedelta(hours=settings.alert_beacon_unheard_hours)
    found = []
    for beacon, site in repository.site_beacons(session):
        facts: dict[str, Any] = {
            "beacon": _beacon_name(beacon.kind, beacon.identifier, beacon.label),
            "site": site.name,
            "zone": site.timezone,
        }
        org = site.organisation_id
        if beacon.battery_mv is not None and beacon.battery_mv < settings.alert_battery_mv:
            battery = facts | {"battery_mv": beacon.battery_mv, "threshold_mv": settings.alert_battery_mv}
            found.append(
                Observation(org, SubjectKind.BEACON, beacon.id, Condition.BATTERY_LOW, facts=battery)
            )
        if beacon.last_seen_at is None or now - beacon.last_seen_at >= unheard:
            heard = facts | {"heard_before": beacon.last_seen_at is not None}
            found.append(
                Observation(
                    org,
                    SubjectKind.BEACON,
                    beacon.id,
                    Condition.BEACON_UNHEARD,
                    beacon.last_seen_at,
                    unheard,
                    heard,
                )
            )
    return found


def _today(zone: str, now: datetime) -> date | None:
    try:
        return now.astimezone(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _budgets(session: Session, now: datetime) -> list[Observation]:
    campaigns = repository.budgeted_campaigns(session, now)
    zones = repository.campaign_zones(session, [c.id for c in campaigns])
    # A campaign's budget counts the prompts of a day as its sites' clocks read it.
    days = {c.id: {d for z in zones.get(c.id, ()) if (d := _today(z, now)) is not None} for c in campaigns}
    used = repository.prompts_on_days(session, list(days), {d for ds in days.values() for d in ds})
    found = []
    for campaign in campaigns:
        assert campaign.daily_budget is not None  # the query keeps budgeted campaigns only
        spent = [
            day
            for day in sorted(days[campaign.id])
            if used.get((campaign.id, day), 0) >= campaign.daily_budget
        ]
        if spent:
            facts = {"campaign": campaign.name, "budget": campaign.daily_budget, "day": spent[-1].isoformat()}
            found.append(
                Observation(
                    campaign.organisation_id,
                    SubjectKind.CAMPAIGN,
                    campaign.id,
                    Condition.BUDGET_EXHAUSTED,
                    facts=facts,
                )
            )
    return found


def observe(session: Session, settings: Settings, now: datetime) -> list[Observation]:
    """Every condition that holds now."""
    return [*_gateways(session, settings, now), *_beacons(session, settings, now), *_budgets(session, now)]


def reconcile(session: Session, observations: list[Observation], now: datetime) -> list[Alert]:
    """Remember the conditions that hold, forget those that cleared; the alerts that became due now."""
    known = {(s.subject_kind, s.subject_id, s.condition): s for s in repository.states(session)}
    due = []
    for seen in observations:
        state = known.pop(seen.key, None)
        if state is None:
            state = AlertState(
                organisation_id=seen.organisation_id,
                subject_kind=seen.subject_kind.value,
                subject_id=seen.subject_id,
                condition=seen.condition.value,
                since=seen.since or now,
            )
            session.add(state)
        elif seen.since is not None:
            state.since = seen.since
        if state.raised_at is None and now - state.since >= seen.grace:
            state.raised_at = now
            due.append(
                Alert(
                    seen.organisation_id,
                    seen.subject_kind,
                    seen.subject_id,
                    seen.condition,
                    state.since,
                    seen.facts,
                )
            )
    for cleared in known.values():  # cleared, or its subject is gone: told again if it recurs
        session.delete(cleared)
    session.flush()
    return due


MAIL_KEEP: Final = timedelta(days=30)  # sent (or given up) alert mails are deleted after this


def languages_of(site_languages: set[str]) -> tuple[str, ...]:
    """An organisation whose sites all speak one language is written to in it; any other in both."""
    if len(site_languages) == 1 and (only := next(iter(site_languages))) in LANGUAGES:
        return (only,)
    return LANGUAGES


def tell(session: Session, settings: Settings, alerts: list[Alert], now: datetime) -> int:
    """Run the hooks and write each alert's e-mail to the outbox (only with SMTP set); mails written."""
    if not alerts:
        return 0
    orgs = {a.organisation_id for a in alerts}
    names = repository.organisation_names(session, orgs)
    owners = repository.owner_emails(session, orgs) if settings.smtp_enabled else {}
    languages = repository.site_languages(session, orgs) if settings.smtp_enabled else {}
    written = 0
    for alert in alerts:
        log.info(
            "alert %s for %s %d (organisation %d)",
            alert.condition.value,
            alert.subject_kind.value,
            alert.subject_id,
            alert.organisation_id,
        )
        for hook in ON_ALERT:
            hook(session, alert.organisation_id, alert.event_type, alert.data())
        if not settings.smtp_enabled:
            continue
        recipients = owners.get(alert.organisation_id, [])
        if not recipients:
            log.info("organisation %d has no owner to e-mail the alert to", alert.organisation_id)
            continue
        subject, body = compose(
            alert,
            names.get(alert.organisation_id, ""),
            languages_of(languages.get(alert.organisation_id, set())),
            settings.public_url,
        )
        session.add(
            AlertMail(
                organisation_id=alert.organisation_id,
                condition=alert.condition.value,
                recipients=recipients,
                subject=subject,
                body=body,
                created_at=now,
                next_attempt_at=now,
            )
        )
        written += 1
    session.flush()
    return written


def evaluate(session: Session, settings: Settings, now: datetime) -> list[Alert]:
    """One evaluation: observe, reconcile, tell. The caller commits."""
    repository.lock_evaluation(session)
    alerts = reconcile(session, observe(session, settings, now), now)
    tell(session, settings, alerts, now)
    repository.delete_finished_mails(session, now - MAIL_KEEP)
    return alerts
