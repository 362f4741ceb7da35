"""Explain runs the live decision's steps on what the database holds, and records and sends nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from server.audit.models import AuditEntry
from server.core.security import pseudonym
from server.policy.explain import explain, find_subscriber
from server.prompts.models import PromptDecision
from server.sites.models import Site
from tests.admin_world import API, add_user, make_world, signed_in
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in

SECRET = "explain-test-secret"


def test_explain_gives_the_chain_and_writes_nothing(client, session, clock: Clock):
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    batch = {"events": [event("evt-x-0001", phone, clock(), "dwell", 20)]}
    assert client.post("/gateway/v1/events", json=batch, headers=gateway).json()["prompts"] == 1
    session.expire_all()
    subscriber_id = session.scalar(select(PromptDecision.subscriber_id))
    assert subscriber_id is not None
    alias = pseudonym(SECRET, charity.organisation_id, subscriber_id)
    person = find_subscriber(session, SECRET, charity.organisation_id, alias)
    assert person is not None
    assert person.id == subscriber_id
    assert find_subscriber(session, SECRET, charity.organisation_id + 99, alias) is None
    site = session.get_one(Site, charity.site_id)

    decision = explain(session, person, site, clock.advance(600), 30.0)

    assert decision.reason == "global_daily_cap"
    names = [c.name for c in decision.checks]
    assert names[-1] == "global_daily_cap"
    assert "quiet_hours" in names
    assert "dwell_too_short" in names
    assert session.scalar(select(func.count()).select_from(PromptDecision)) == 1

    tomorrow_night = clock.advance(12 * 3600)  # 23:10 in Berlin
    assert explain(session, person, site, tomorrow_night, 30.0).reason == "quiet_hours"


def test_a_viewer_reads_explain_over_http_and_other_charities_sites_are_404(client, session, clock: Clock):
    world = make_world(session, clock())
    session.commit()
    site_a, site_b = world.ids["a"]["site_id"], world.ids["b"]["site_id"]
    answer = client.get(f"{API}/sites/{site_a}/explain", headers=world.headers["viewer_a"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["prompted"], body["reason"], body["person"]) == (False, "no_active_campaign", None)
    assert [c["name"] for c in body["checks"]][-1] == "no_active_campaign"
    assert client.get(f"{API}/sites/{site_b}/explain", headers=world.headers["viewer_a"]).status_code == 404
    unknown = client.get(
        f"{API}/sites/{site_a}/explain",
        params={"subscriber": "p_00000000000000000000"},
        headers=world.headers["viewer_a"],
    )
    assert unknown.status_code == 404
    assert session.scalar(select(func.count()).select_from(PromptDecision)) == 2, "only the world's own"
    session.expire_all()
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "policy.explain")).all()
    assert (entry.entity, entry.entity_id, entry.organisation_id) == (
        "site",
        str(site_a),
        world.ids["a"]["org_id"],
    )
    assert entry.after == {"person": None, "dwell_s": 15.0, "reason": "no_active_campaign"}


def test_two_charities_know_one_person_by_different_pseudonyms(client, session, clock: Clock):
    """Charity A and charity B each see the person under their own alias, stable within each; B's alias does
    not find the person through A's explain, so their lists cannot be matched to follow someone."""
    a, b = make_charity(session, clock(), slug="hospiz"), make_charity(session, clock(), slug="tafel")
    headers = {}
    for name, charity in (("a", a), ("b", b)):
        owner = add_user(session, f"owner@{name}.example", roles={charity.organisation_id: "owner"})
        headers[name] = signed_in(session, owner, clock())
    operator = signed_in(session, add_user(session, "op@nahbar.example", operator=True), clock())
    session.commit()
    phone = opt_in(client)
    for charity, step in ((a, "a"), (b, "b")):  # enter and dwell at each: two decisions per charity
        walk = [
            event(f"evt-two-{step}-1", phone, clock()),
            event(f"evt-two-{step}-2", phone, clock(), "dwell", 20),
        ]
        gateway = enrol(client, charity.enrolment_code)
        answer = client.post("/gateway/v1/events", json={"events": walk}, headers=gateway)
        assert answer.status_code == 200, answer.text
        clock.advance(300)

    def people(who: dict[str, str], **params: object) -> list[str]:
        answer = client.get(f"{API}/decisions", params=params, headers=who)
        assert answer.status_code == 200, answer.text
        return [item["person"] for item in answer.json()["items"]]

    seen_by_a, seen_by_b = people(headers["a"]), people(headers["b"])
    assert len(seen_by_a) == len(seen_by_b) == 2
    assert len(set(seen_by_a)) == len(set(seen_by_b)) == 1  # the same alias within one charity
    alias_a, alias_b = seen_by_a[0], seen_by_b[0]
    assert alias_a.startswith("p_")
    assert alias_b.startswith("p_")
    assert alias_a != alias_b
    # The operator sees each charity's rows under that charity's alias, as do its delivery lists.
    assert set(people(operator, organisation_id=a.organisation_id)) == {alias_a}
    assert set(people(operator, organisation_id=b.organisation_id)) == {alias_b}
    deliveries = client.get(f"{API}/deliveries", headers=headers["a"]).json()["items"]
    assert {item["person"] for item in deliveries} == {alias_a}

    def explain_at(charity, who: dict[str, str], alias: str):
        return client.get(f"{API}/sites/{charity.site_id}/explain", params={"subscriber": alias}, headers=who)

    found = explain_at(a, headers["a"], alias_a)
    assert found.status_code == 200, found.text
    assert found.json()["person"] == alias_a
    assert explain_at(b, headers["b"], alias_b).json()["person"] == alias_b
    assert explain_at(a, headers["a"], alias_b).status_code == 404
    assert explain_at(a, operator, alias_b).status_code == 404  # not even for the operator
    assert explain_at(b, headers["b"], alias_a).status_code == 404
