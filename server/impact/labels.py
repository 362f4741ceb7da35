"""What the funnel's steps and the suppression reasons are called, in German and English."""

from __future__ import annotations

from typing import Final

from server.policy.decide import Reason

STEPS: Final[dict[str, tuple[str, str]]] = {  # key: (German, English)
    "seen": ("Vorbeigehende gesehen", "Passers-by seen"),
    "eligible": ("Ansprechbar", "Eligible"),
    "prompted": ("Angesprochen", "Prompted"),
    "delivered": ("Zugestellt", "Delivered"),
    "opened": ("Geöffnet", "Opened"),
    "accepted": ("Zugesagt", "Accepted"),
    "confirmed": ("Bestätigt", "Confirmed"),
}

ANSWERS: Final[dict[str, tuple[str, str]]] = {
    "not_now": ("Nicht jetzt", "Not now"),
    "not_here": ("Nicht hier", "Not here"),
    "not_this_charity": ("Nicht diese Organisation", "Not this charity"),
}

REASONS: Final[dict[str, tuple[str, str]]] = {
    Reason.NOT_HERE: ("Möchte hier nicht angesprochen werden", "Asked not to be prompted here"),
    Reason.SITE_NO_TIMEZONE: ("Standort ohne Zeitzone", "Site has no time zone"),
    Reason.QUIET_HOURS: ("Ruhezeit der Plattform", "Platform quiet hours"),
    Reason.SITE_QUIET_HOURS: ("Ruhezeit des Standorts", "Site quiet hours"),
    Reason.PERSON_QUIET_HOURS: ("Eigene Ruhezeit der Person", "The person's own quiet hours"),
    Reason.NO_ACTIVE_CAMPAIGN: ("Keine laufende Kampagne", "No running campaign"),
    Reason.CAMPAIGN_QUIET_HOURS: ("Außerhalb der Kampagnenzeiten", "Outside the campaigns' hours"),
    Reason.NOT_THIS_ORG: ("Möchte von dieser Organisation nichts", "Asked not to hear from this charity"),
    Reason.SCOPE_NOT_CONSENTED: ("Nicht dafür eingewilligt", "Did not consent to this kind"),
    Reason.WALK_BY_FORBIDDEN: ("Vorbeigehen-Kampagnen nicht erlaubt", "Walk-by campaigns not allowed"),
    Reason.DWELL_TOO_SHORT: ("Zu kurz geblieben", "Did not stay long enough"),
    Reason.DWELL_TOO_LONG: ("Zu lange geblieben (wohl Personal)", "Stayed too long (likely staff)"),
    Reason.GLOBAL_DAILY_CAP: ("Heute schon angesprochen", "Already prompted today"),
    Reason.GLOBAL_WEEKLY_CAP: ("Diese Woche genug angesprochen", "Prompted enough this week"),
    Reason.GLOBAL_MONTHLY_CAP: ("Diesen Monat genug angesprochen", "Prompted enough this month"),
    Reason.ORG_COOLDOWN: (
        "Kürzlich von dieser Organisation angesprochen",
        "Recently prompted by this charity",
    ),
    Reason.CAMPAIGN_ACCEPTED: ("Hat schon zugesagt", "Accepted this campaign already"),
    Reason.CAMPAIGN_DISMISSED: ("Hat kürzlich abgelehnt", "Declined this campaign recently"),
    Reason.CAMPAIGN_ONCE: ("Kampagne schon gezeigt", "Shown this campaign already"),
    Reason.BUDGET_EXHAUSTED: ("Tagesbudget aufgebraucht", "Daily budget spent"),
}

# The reasons that stop a prompt someone was eligible for: they stayed, consented, a campaign ran and it
# was not quiet, but a cap, cooldown or budget held. With the prompts, these visits are the eligible ones.
ELIGIBLE: Final = frozenset(
    {
        Reason.PROMPTED,
        Reason.GLOBAL_DAILY_CAP,
        Reason.GLOBAL_WEEKLY_CAP,
        Reason.GLOBAL_MONTHLY_CAP,
        Reason.ORG_COOLDOWN,
        Reason.CAMPAIGN_ACCEPTED,
        Reason.CAMPAIGN_DISMISSED,
        Reason.CAMPAIGN_ONCE,
        Reason.BUDGET_EXHAUSTED,
    }
)


def reason_label(reason: str) -> tuple[str, str]:
    return REASONS.get(reason, (reason, reason))
