"""The rules that protect the people prompted, checked before a campaign may run (or stay running)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from server.campaigns.models import Campaign, CampaignVariant
from server.core import const
from server.core.errors import RuleViolation
from server.sites.models import Site
from server.tenancy.models import Organisation, PlatformSettings

Problem = dict[str, str]


def limits(campaign: Campaign, platform: PlatformSettings) -> list[Problem]:
    """Checked on every save: the platform's bounds and a coherent schedule."""
    problems: list[Problem] = []
    least = platform.min_dwell_s
    if campaign.min_dwell_s == 0 and not platform.allow_walk_by:
        problems.append(
            {
                "field": "min_dwell_s",
                "message": "Walk-by campaigns (a minimum dwell of 0: asked as people pass) are not allowed "
                f"on this platform; ask people who stayed at least {least} s.",
            }
        )
    elif campaign.min_dwell_s is not None and 0 < campaign.min_dwell_s < least:
        walk_by = " (or 0 for a walk-by campaign)" if platform.allow_walk_by else ""
        problems.append(
            {
                "field": "min_dwell_s",
                "message": f"{campaign.min_dwell_s} s is below the platform's minimum of {least} s{walk_by}; "
                "a passer-by must have stopped first.",
            }
        )
    if campaign.max_dwell_s is not None and campaign.max_dwell_s > const.DEFAULT_MAX_DWELL_S:
        problems.append(
            {
                "field": "max_dwell_s",
                "message": f"{campaign.max_dwell_s} s is above the platform "
                f"maximum of {const.DEFAULT_MAX_DWELL_S} s; longer stays are likely staff or relatives.",
            }
        )
    if (
        campaign.min_dwell_s is not None
        and campaign.max_dwell_s is not None
        and campaign.min_dwell_s > campaign.max_dwell_s
    ):
        problems.append({"field": "max_dwell_s", "message": "max_dwell_s must not be below min_dwell_s."})
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        problems.append({"field": "ends_at", "message": "ends_at must be after starts_at."})
    if (campaign.daily_from is None) != (campaign.daily_until is None):
        problems.append(
            {"field": "daily_until", "message": "Give both daily_from and daily_until, or neither."}
        )
    return problems


def _https(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname) and not parts.username and " " not in url


def readiness(
    campaign: Campaign,
    org: Organisation,
    sites: Sequence[Site],
    variants: Sequence[CampaignVariant],
    now: datetime,
    platform: PlatformSettings,
) -> list[Problem]:
    """Checked before activation and on every change to an active campaign."""
    problems = limits(campaign, platform)
    if org.suspended_at is not None:
        problems.append(
            {
                "field": "organisation.suspended_at",
                "message": "The platform operator suspended this organisation; its campaigns cannot run "
                "until the suspension is lifted.",
            }
        )
    if not org.privacy_contact:
        problems.append(
            {
                "field": "organisation.privacy_contact",
                "message": "The organisation has no privacy "
                "contact; people must be told whom to ask about their data. Set it first.",
            }
        )
    if not _https(campaign.cta_url):
        problems.append({"field": "cta_url", "message": "The call to action must be an https:// URL."})
    if not sites:
        problems.append({"field": "site_ids", "message": "Pick at least one site."})
    languages = {v.language for v in variants}
    for site in sites:
        if site.language not in languages:
            problems.append(
                {
                    "field": "variants",
                    "message": f"Site {site.id} ({site.name}) speaks "
                    f"{site.language!r}; add a variant in that language.",
                    "site": site.name,
                    "language": site.language,
                }
            )
    for index, variant in enumerate(variants):
        for name, limit in (
            ("title", const.VARIANT_TITLE_MAX),
            ("body", const.VARIANT_BODY_MAX),
            ("cta_label", const.VARIANT_CTA_MAX),
        ):
            if len(getattr(variant, name)) > limit:
                problems.append(
                    {"field": f"variants[{index}].{name}", "message": f"At most {limit} characters."}
                )
    if campaign.ends_at is not None and campaign.ends_at <= now:
        problems.append({"field": "ends_at", "message": "The campaign has already ended."})
    return problems


def raise_if(problems: list[Problem], what: str) -> None:
    if problems:
        names = ", ".join(dict.fromkeys(p["field"] for p in problems))
        raise RuleViolation(f"{what}: check {names}.", extra={"errors": problems})
