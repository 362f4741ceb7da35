"""The operator's quiet hours: set in the platform settings (API and page), read by the live path, explain
and the simulator on each site's clock; an empty window (start = end) is refused, so the platform always
keeps quiet hours."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.prompts.models import PromptDecision
from server.tenancy.models import PlatformSettings
from tests.admin_world import add_user, make_world, signed_in
from tests.conftest import Clock
from tests.test_web_pages import error_of, get, post
from tests.web_world import browser_of
from tests.world import enrol, event, make_charity, opt_in

SETTINGS = "/admin/api/v1/platform/settings"


def _patch(client, operator: dict[str, str], body: dict[str, object]):
    etag = client.get(SETTINGS, headers=operator).headers["etag"]
    return client.patch(SETTINGS, json=body, headers=operator | {"If-Match": etag})


def test_the_operators_quiet_hours_hold_on_the_live_path_and_in_explain(
    client, session: Session, clock: Clock
):
    charity = make_charity(session, clock())  # the clock reads 12:00 in Berlin, the site's zone
    gateway = enrol(client, charity.enrolment_code)
    operator = signed_in(session, add_user(session, "op@nahbar.example", operator=True), clock())
    session.commit()
    default = client.get(SETTINGS, headers=operator).json()
    assert (default["quiet_start"], default["quiet_end"]) == ("21:00", "08:00")

    changed = _patch(client, operator, {"quiet_start": "11:30", "quiet_end": "13:00"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["quiet_start"], changed.json()["quiet_end"]) == ("11:30", "13:00")

    phone = opt_in(client)
    client.post(
        "/gateway/v1/events",
        json={"events": [event("quiet-0001", phone, clock(), kind="dwell", dwell=30)]},
        headers=gateway,
    )
    session.expire_all()
    assert list(session.scalars(select(PromptDecision.reason))) == ["quiet_hours"]
    explained = client.get(f"/admin/api/v1/sites/{charity.site_id}/explain", headers=operator)
    assert explained.json()["reason"] == "quiet_hours", explained.text

    # Back to a window that ends before noon: the next passer-by is asked (a visit is decided once).
    assert _patch(client, operator, {"quiet_start": "21:00", "quiet_end": "11:00"}).status_code == 200
    clock.advance(60)
    client.post(
        "/gateway/v1/events",
        json={"events": [event("quiet-0002", opt_in(client), clock(), kind="dwell", dwell=30)]},
        headers=gateway,
    )
    session.expire_all()
    assert list(session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id))) == [
        "quiet_hours",
        "prompted",
    ]


def test_an_empty_or_malformed_window_is_refused_and_nothing_changes(client, session: Session, clock: Clock):
    make_charity(session, clock())
    operator = signed_in(session, add_user(session, "op@nahbar.example", operator=True), clock())
    session.commit()
    empty = _patch(client, operator, {"quiet_start": "08:00", "quiet_end": "08:00"})
    assert empty.status_code == 422, empty.text
    assert empty.json()["field"] == "quiet_end"
    one_sided = _patch(client, operator, {"quiet_end": "21:00"})  # the same as the saved start
    assert one_sided.status_code == 422, one_sided.text
    assert _patch(client, operator, {"quiet_start": "25:00"}).status_code == 422
    session.expire_all()
    row = session.scalars(select(PlatformSettings)).one()
    assert (row.quiet_start, row.quiet_end) == ("21:00", "08:00")


def test_the_platform_page_saves_quiet_hours_after_the_comparison(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    browser = browser_of(world, "operator")
    page = get(client, "/admin/platform", browser, lang="en")
    assert page.status_code == 200
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version is not None
    form = {
        "max_prompts_per_day": "1",
        "max_prompts_per_week": "3",
        "max_prompts_per_month": "8",
        "min_org_cooldown_days": "0",
        "retention_days": "14",
        "min_dwell_s": "15",
        "allow_walk_by": "on",
        "version": version.group(1),
    }
    row = session.scalars(select(PlatformSettings)).one()
    form |= {k: str(getattr(row, k)) for k in form if k not in {"allow_walk_by", "version"}}

    refused = post(client, "/admin/platform", browser, form | {"quiet_start": "20:00", "quiet_end": "20:00"})
    assert refused.status_code == 422
    assert error_of(refused.text, "quiet_end") == (
        "Ruhezeiten brauchen einen Beginn und ein Ende, die sich unterscheiden, etwa 21:00 bis 08:00."
    )

    proposed = form | {"quiet_start": "20:00", "quiet_end": "08:00"}
    shown = post(client, "/admin/platform", browser, proposed, "en")
    assert shown.status_code == 200, shown.text
    assert "Check the effect first" in shown.text
    session.expire_all()
    assert session.scalars(select(PlatformSettings.quiet_start)).one() == "21:00"  # not yet
    carried = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', shown.text))
    saved = post(client, "/admin/platform", browser, carried | {"confirmed": "yes"})
    assert saved.status_code == 303, saved.text
    session.expire_all()
    row = session.scalars(select(PlatformSettings)).one()
    assert (row.quiet_start, row.quiet_end) == ("20:00", "08:00")
