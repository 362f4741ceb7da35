"""Names and labels people type into the admin API: surrounding spaces are trimmed, and a name of nothing but
spaces (or tabs, or line breaks) is refused with a 422 that names the field, on both databases."""

from __future__ import annotations

from typing import Any

from tests.admin_world import API, make_world
from tests.test_admin_tenancy_matrix import VALID_CAMPAIGN, _fill
from tests.world import opt_in

BLANK = " \t\n\u00a0 "  # spaces, a tab, a line break and a no-break space


def refused(answer, field: str) -> None:
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_failed"
    assert field in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == [field]
    assert "blank" in problem["errors"][0]["message"]


def test_blank_names_are_refused_and_names_are_trimmed(client, session, clock):
    world = make_world(session, clock())
    ids = world.ids["a"]
    operator, editor, owner = (world.headers[who] for who in ("operator", "editor_a", "owner_a"))
    site = {"organisation_id": ids["org_id"], "name": "Laden", "timezone": "Europe/Berlin"}
    campaign: dict[str, Any] = _fill(VALID_CAMPAIGN, ids)
    variant = campaign["variants"][0]
    # (method, path, valid body, field to blank, who, If-Match)
    cases = [
        ("POST", "/organisations", {"slug": "gamma", "name": "Gamma"}, "name", operator, None),
        ("PATCH", f"/organisations/{ids['org_id']}", {}, "name", owner, '"v1"'),
        ("POST", "/sites", site, "name", editor, None),
        ("POST", "/sites", site, "address", editor, None),
        ("PATCH", f"/sites/{ids['site_id']}", {}, "name", editor, '"v1"'),
        ("PATCH", f"/sites/{ids['site_id']}", {}, "address", editor, '"v1"'),
        (
            "POST",
            f"/sites/{ids['site_id']}/beacons",
            {"kind": "eddystone_uid", "identifier": "00112233445566778899/aabbccddeeff"},
            "label",
            editor,
            None,
        ),  # noqa: E501
        ("POST", "/gateways", {"site_id": ids["site_id"], "name": "back door"}, "name", editor, None),
        ("POST", "/campaigns", campaign, "name", editor, None),
        ("PATCH", f"/campaigns/{ids['campaign_id']}", {}, "name", editor, '"v1"'),
        ("POST", "/auth/tokens", {"name": "ci", "scopes": ["read"]}, "name", editor, None),
    ]
    for method, path, body, field, headers, if_match in cases:
        extra = {"If-Match": if_match} if if_match else {}
        answer = client.request(method, API + path, json=body | {field: BLANK}, headers=headers | extra)
        refused(answer, field)
    for part in ("title", "body", "cta_label"):
        blank_variant = campaign | {"variants": [variant | {part: BLANK}]}
        refused(client.post(f"{API}/campaigns", json=blank_variant, headers=editor), f"variants[0].{part}")

    # Trimmed where stored: what people see has no stray spaces around it.
    made = client.post(
        f"{API}/organisations", json={"slug": "gamma", "name": "  Gamma e.V. \n"}, headers=operator
    )
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "Gamma e.V."
    trimmed_variant = variant | {"title": " Spenden? "}
    made = client.post(
        f"{API}/campaigns",
        json=campaign | {"name": "\tWinter ", "variants": [trimmed_variant]},
        headers=editor,
    )
    assert made.status_code == 201, made.text
    assert (made.json()["name"], made.json()["variants"][0]["title"]) == ("Winter", "Spenden?")
    # An optional text is trimmed too, and null still clears it.
    site_url, v1, v2 = f"{API}/sites/{ids['site_id']}", {"If-Match": '"v1"'}, {"If-Match": '"v2"'}
    moved = client.patch(site_url, json={"address": " Markt 1 "}, headers=editor | v1)
    assert (moved.status_code, moved.json()["address"]) == (200, "Markt 1")
    cleared = client.patch(site_url, json={"address": None}, headers=editor | v2)
    assert (cleared.status_code, cleared.json()["address"]) == (200, None)


def test_a_phone_cannot_pair_as_a_test_device_with_a_blank_label(client, session, clock):
    world = make_world(session, clock())
    session.commit()
    url = f"{API}/organisations/{world.ids['a']['org_id']}/test-devices/pairing-codes"
    code = client.post(url, headers=world.headers["editor_a"]).json()["code"]
    phone = opt_in(client)
    answer = client.post(
        "/mobile/v1/me/test-device", json={"code": code, "label": BLANK}, headers=phone.headers
    )
    refused(answer, "label")
    paired = client.post(
        "/mobile/v1/me/test-device", json={"code": code, "label": " Anna's Pixel "}, headers=phone.headers
    )
    assert paired.status_code == 201, paired.text
    devices = client.get(url.removesuffix("/pairing-codes"), headers=world.headers["editor_a"]).json()
    assert [d["label"] for d in devices["items"]] == ["Anna's Pixel"]
