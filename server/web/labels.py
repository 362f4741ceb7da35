"""Plain words for the domain's codes (roles, statuses, gateway health, the policy's reasons), as msgids."""

from __future__ import annotations

from typing import Final

from server.web.i18n import N_, gettext

ROLES: Final = {"owner": N_("owner"), "editor": N_("editor"), "viewer": N_("viewer")}
KINDS: Final = {"volunteer": N_("volunteering"), "donation": N_("donation")}
STATUSES: Final = {
    "draft": N_("draft"),
    "active": N_("running"),
    "paused": N_("paused"),
    "ended": N_("ended"),
}
LANGUAGE_NAMES: Final = {"de": N_("German"), "en": N_("English")}
HEALTH: Final = {
    "pending": N_("waiting for enrolment"),
    "ok": N_("working"),
    "stale": N_("needs attention: its heartbeats are late"),
    "silent": N_("needs attention: enrolled, but never heard from"),
    "scanner_failing": N_("needs attention: Bluetooth scanning fails"),
    "revoked": N_("revoked"),
}
NEEDS_ATTENTION: Final = frozenset({"stale", "silent", "scanner_failing"})
SCANNER_ERRORS: Final = {
    "adapter_missing": N_("no Bluetooth adapter found"),
    "adapter_off": N_("the Bluetooth adapter is switched off"),
    "bluez_not_running": N_("the Bluetooth service (bluetoothd) is not running"),
    "permission_denied": N_("the agent may not use Bluetooth (permissions)"),
    "dbus_unavailable": N_("the system bus (D-Bus) is not reachable"),
    "busy": N_("the adapter is busy"),
    "timeout": N_("the adapter did not answer in time"),
    "silent": N_("nothing heard for a while (an empty street at night is normal)"),
    "other": N_("another error"),
}
# Why someone was or was not asked, as the policy's reason codes say it.
REASONS: Final = {
    "prompted": N_("This person would be asked now."),
    "not_here": N_("This person said “not here again” at this site, so they are never asked here."),
    "site_no_timezone": N_("The site has no time zone, so nobody is asked there. Set it on the site's page."),
    "quiet_hours": N_("It is inside the platform's quiet hours."),
    "site_quiet_hours": N_("It is inside this site's quiet hours."),
    "person_quiet_hours": N_("It is inside the quiet hours this person set on their phone."),
    "no_active_campaign": N_("No campaign is running at this site now."),
    "campaign_quiet_hours": N_("Every campaign here is outside its daily hours now."),
    "not_this_org": N_("This person asked to hear nothing more from this charity."),
    "scope_not_consented": N_(
        "This person did not agree to this kind of request (volunteering or donating)."
    ),
    "walk_by_forbidden": N_(
        "The campaigns here ask people as they walk by, which the platform does not allow."
    ),
    "dwell_too_short": N_("The person has not been here long enough yet."),
    "dwell_too_long": N_(
        "The person has been here so long that they are probably staff or visiting someone."
    ),
    "global_daily_cap": N_("The person was already asked today, by this or another charity."),
    "global_weekly_cap": N_("The person was asked as often this week as the limits allow."),
    "global_monthly_cap": N_("The person was asked as often this month as the limits allow."),
    "org_cooldown": N_("This charity asked the person recently; a charity must wait between two requests."),
    "campaign_accepted": N_("The person already said yes to this campaign."),
    "campaign_dismissed": N_("The person said “not now” to this campaign not long ago."),
    "campaign_once": N_("This campaign already asked the person."),
    "budget_exhausted": N_("The campaign's daily budget is used up for now."),
    "test_send": N_("A test send to a paired test phone."),
}
# What each step of the decision checks, in the order the policy checks them.
CHECKS: Final = {
    "not_here": N_("The person has not excluded this site"),
    "site_no_timezone": N_("The site has a time zone"),
    "quiet_hours": N_("Outside the platform's quiet hours"),
    "site_quiet_hours": N_("Outside the site's quiet hours"),
    "person_quiet_hours": N_("Outside the person's own quiet hours"),
    "no_active_campaign": N_("A campaign is running here"),
    "campaign_quiet_hours": N_("Within a campaign's daily hours"),
    "not_this_org": N_("The person has not excluded the charity"),
    "scope_not_consented": N_("The person agreed to this kind of request"),
    "walk_by_forbidden": N_("Walk-by campaigns are allowed, or none is one"),
    "dwell_too_long": N_("Not here for too long (staff, visitors)"),
    "dwell_too_short": N_("Here long enough"),
    "global_daily_cap": N_("Below today's limit"),
    "global_weekly_cap": N_("Below the weekly limit"),
    "global_monthly_cap": N_("Below the monthly limit"),
    "org_cooldown": N_("The charity's waiting time is over"),
    "campaign_accepted": N_("Has not said yes to the campaign already"),
    "campaign_dismissed": N_("Has not said “not now” to it lately"),
    "campaign_once": N_("Not asked by the campaign before"),
    "budget_exhausted": N_("Daily budget left"),
    "prompted": N_("A campaign and its text are chosen"),
}


def label(lang: str, table: dict[str, str], code: str | None) -> str:
    """The plain words for a code, or the code itself when there are none."""
    if code is None:
        return "–"
    return gettext(lang, table[code]) if code in table else code
