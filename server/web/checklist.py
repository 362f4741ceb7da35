"""The activation checklist: every rule a campaign must meet before it runs, met or not, in plain words."""

from __future__ import annotations

from typing import Final

from server.campaigns.rules import Problem
from server.web.i18n import N_
from server.web.labels import LANGUAGE_NAMES
from server.web.pages import Visit

# (the fields a rule's problems name, what the rule asks, what to do when it is not met)
RULES: Final = (
    (
        ("organisation.suspended_at",),
        N_("The organisation is not suspended"),
        N_("The platform operator suspended the organisation; ask the operator."),
    ),
    (
        ("organisation.privacy_contact",),
        N_("The organisation names a privacy contact"),
        N_("Set the privacy contact on the organisation's page (owners)."),
    ),
    (("site_ids",), N_("At least one site"), N_("Choose the sites where the campaign asks.")),
    (("variants",), N_("A text in the language of every site"), None),
    (
        ("cta_url",),
        N_("The call to action is an https:// address"),
        N_("Enter an address starting with https://."),
    ),
    (
        ("min_dwell_s", "max_dwell_s"),
        N_("Dwell times within the platform's limits"),
        N_("Change the minimum or maximum dwell; the form says which limits hold."),
    ),
    (
        ("ends_at", "daily_until", "starts_at"),
        N_("A schedule that can still run"),
        N_("Check the start, the end and the daily hours."),
    ),
)
SITE_LANGUAGE: Final = N_("%(site)s speaks %(language)s: add a text in that language.")
TOO_LONG: Final = N_("A text is too long; the form shows which.")


def checklist(visit: Visit, problems: list[Problem]) -> list[tuple[bool, str, list[str]]]:
    """(met, the rule, what to do) for every rule; what to do is empty when it is met."""
    items = []
    for fields, rule, todo in RULES:
        found = [p for p in problems if p.get("field", "").split("[")[0] in fields]
        advice: list[str] = []
        for problem in found:
            if "site" in problem:
                language = visit.t(LANGUAGE_NAMES.get(problem["language"], problem["language"]))
                advice.append(visit.t(SITE_LANGUAGE, site=problem["site"], language=language))
            elif problem.get("field", "").startswith("variants["):
                advice.append(visit.t(TOO_LONG))
            elif todo is not None:
                advice.append(visit.t(todo))
        items.append((not found, visit.t(rule), list(dict.fromkeys(advice))))
    return items
