"""Two admins cannot overwrite each other silently: updates need If-Match, and a stale ETag gets 412."""

from __future__ import annotations

import threading

import httpx

from tests.admin_world import API, make_world


def test_a_stale_etag_gets_412_and_nothing_is_lost(client, session, clock):
    world = make_world(session, clock())
    url = f"{API}/sites/{world.ids['a']['site_id']}"
    alice, bob = world.headers["owner_a"], world.headers["editor_a"]
    etag = client.get(url, headers=alice).headers["ETag"]
    assert etag == '"v1"'

    first = client.patch(url, json={"address": "Alice's"}, headers=alice | {"If-Match": etag})
    assert first.status_code == 200
    assert first.headers["ETag"] == '"v2"'
    stale = client.patch(url, json={"quiet_start": "20:00"}, headers=bob | {"If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["code"] == "precondition_failed"
    current = client.get(url, headers=bob).json()
    assert (current["address"], current["quiet_start"], current["version"]) == ("Alice's", "21:00", 2)


def test_an_update_without_if_match_is_428(client, session, clock):
    world = make_world(session, clock())
    for path in (
        f"/sites/{world.ids['a']['site_id']}",
        f"/campaigns/{world.ids['a']['campaign_id']}",
        f"/organisations/{world.ids['a']['org_id']}",
    ):
        answer = client.patch(API + path, json={"name": "x"}, headers=world.headers["owner_a"])
        assert answer.status_code == 428, (path, answer.text)
        assert answer.json()["code"] == "precondition_required"


def test_role_changes_and_removals_need_the_memberships_etag(client, session, clock):
    world = make_world(session, clock())
    org_id, membership_id = world.ids["a"]["org_id"], world.ids["a"]["membership_id"]
    url = f"{API}/organisations/{org_id}/members/{membership_id}"
    alice, bob = world.headers["owner_a"], world.headers["operator"]
    read = client.get(url, headers=alice)
    assert (read.headers["ETag"], read.json()["version"], read.json()["role"]) == ('"v1"', 1, "viewer")
    listed = client.get(f"{API}/organisations/{org_id}/members", headers=alice).json()
    assert {m["id"]: m["version"] for m in listed}[membership_id] == 1

    missing = client.patch(url, json={"role": "editor"}, headers=alice)
    assert (missing.status_code, missing.json()["code"]) == (428, "precondition_required")
    promoted = client.patch(url, json={"role": "owner"}, headers=alice | {"If-Match": '"v1"'})
    assert (promoted.status_code, promoted.headers["ETag"]) == (200, '"v2"')
    # Bob read v1 too: neither his demotion nor his removal may silently undo Alice's promotion.
    stale = client.patch(url, json={"role": "viewer"}, headers=bob | {"If-Match": '"v1"'})
    assert (stale.status_code, stale.json()["code"]) == (412, "precondition_failed")
    assert stale.json()["current_etag"] == '"v2"'
    assert client.delete(url, headers=bob | {"If-Match": '"v1"'}).status_code == 412
    assert client.delete(url, headers=bob).status_code == 428
    assert client.get(url, headers=bob).json()["role"] == "owner"

    assert client.delete(url, headers=bob | {"If-Match": '"v2"'}).status_code == 204
    assert client.get(url, headers=bob).status_code == 404


def test_a_stale_etag_on_a_status_change_is_412(client, session, clock):
    world = make_world(session, clock())
    url = f"{API}/campaigns/{world.ids['a']['campaign_id']}"
    owner = world.headers["owner_a"]
    assert client.patch(url, json={"priority": 3}, headers=owner | {"If-Match": '"v1"'}).status_code == 200
    assert client.post(f"{url}/activate", headers=owner | {"If-Match": '"v1"'}).status_code == 412
    assert client.post(f"{url}/activate", headers=owner | {"If-Match": '"v2"'}).status_code == 200


def test_of_many_concurrent_edits_with_one_etag_exactly_one_wins(live_server, session, clock):
    world = make_world(session, clock())
    url = f"{live_server.url}{API}/campaigns/{world.ids['a']['campaign_id']}"
    headers = world.headers["owner_a"] | {"If-Match": '"v1"'}
    statuses: list[int] = []
    start = threading.Barrier(8)

    def edit(n: int) -> None:
        with httpx.Client(timeout=30) as http:
            start.wait()
            statuses.append(http.patch(url, json={"priority": n}, headers=headers).status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [412] * 7
    with httpx.Client() as http:
        final = http.get(url, headers=world.headers["owner_a"]).json()
    assert final["version"] == 2
