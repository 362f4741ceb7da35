"""Confirmations from the charity, end to end on both databases: a phone opts in, is prompted, opens the
prompt's page and follows its call to action; the charity's page posts the link's `nahbar_ref` back, signed
the Standard Webhooks way (by the library, as the charity would), and the funnel's confirmed step counts it
once. Wrong or stale signatures, unknown references, malformed bodies, rotated and deleted secrets and another
charity's secret count nothing; the confirmation names no person, and its count outlives the person's
withdrawal and the raw-data purge."""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from server.core.security import hash_token
from server.impact.confirmations import reference
from server.impact.models import PromptReference
from server.prompts.models import PromptDecision
from server.retention.tasks import purge
from server.webhooks.models import WebhookMessage
from tests.admin_world import API, add_user, signed_in
from tests.conftest import TEST_SECRET, Clock
from tests.impact_world import Street, open_street
from tests.world import Phone, enrol, make_charity, opt_in

DAY = date(2026, 11, 25)
CTA = "https://hospiz.example.org/mitmachen?von=nahbar"
CONFIRM = "/impact/v1/confirmations"
REF_SHAPE = re.compile(r"nr_[A-Za-z0-9_-]{24}")


# --- The charity's side: what its page's server does, with the Standard Webhooks library -----------------


def signed(secret: str, body: bytes, at: datetime, msg_id: str | None = None) -> dict[str, str]:
    """The headers a charity's server sends with `body`, signed at `at` by its own clock."""
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def body_of(ref: str) -> bytes:
    return json.dumps({"ref": ref}).encode()


def confirm(client: TestClient, secret: str, ref: str, at: datetime):
    body = body_of(ref)
    return client.post(CONFIRM, content=body, headers=signed(secret, body, at))


def a_stranger_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# --- Our side: the admin API, the phone, the funnel --------------------------------------------------------


def staff(session, org_id: int, clock: Clock, role: str = "editor") -> dict[str, str]:
    user = add_user(session, f"{role}-{secrets.token_hex(3)}@charity.example", roles={org_id: role})
    headers = signed_in(session, user, clock.now)
    session.commit()
    return headers


def set_secret(client: TestClient, org_id: int, headers: dict[str, str], **body: int) -> dict:
    answer = client.post(
        f"{API}/organisations/{org_id}/confirmation-secret", json=body or None, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def followed(street: Street, phone: Phone) -> str:
    """The app opens the prompt from its inbox, the person taps the call to action: where it leads."""
    landing = street.landing(phone)
    assert street.client.get(landing).status_code == 200
    answer = street.client.get(f"{landing}/go", follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def ref_of(location: str) -> str:
    [ref] = parse_qs(urlsplit(location).query)["nahbar_ref"]
    return ref


def prompted(street: Street, *, scopes: list[str] | None = None) -> Phone:
    """A phone opts in and stays 20 s at the door: prompted."""
    phone = opt_in(street.client, scopes=scopes)
    street.walk(phone, [20])
    street.clock.advance(600)
    return phone


def confirmed_count(street: Street, headers: dict[str, str]) -> int:
    street.fold()
    answer = street.client.get(
        f"{API}/organisations/{street.charity.organisation_id}/impact/funnel",
        params={"since": DAY.isoformat(), "until": DAY.isoformat()},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["totals"]["confirmed"]


def test_a_signed_confirmation_counts_once_and_names_no_person(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org = street.charity.organisation_id
    editor = staff(session, org, clock)
    hook = quiet_client.post(
        f"{API}/organisations/{org}/webhooks",
        json={"url": "https://hooks.hospiz.example.org/nahbar", "event_types": ["prompt.accepted"]},
        headers=editor,
    )
    assert hook.status_code == 201, hook.text
    made = set_secret(quiet_client, org, editor)
    secret = made["secret"]
    assert secret.startswith("whsec_")
    assert made["confirm_url"].endswith(CONFIRM)
    assert made["previous_valid_until"] is None
    viewer = staff(session, org, clock, "viewer")
    assert confirmed_count(street, viewer) == 0

    phone = prompted(street)
    location = followed(street, phone)
    # The charity's own query stays; the reference is added to it.
    assert location.startswith("https://hospiz.example.org/mitmachen?")
    assert parse_qs(urlsplit(location).query)["von"] == ["nahbar"]
    ref = ref_of(location)
    assert REF_SHAPE.fullmatch(ref)

    body = body_of(ref)
    headers = signed(secret, body, clock.now)
    messages = session.scalar(select(func.count()).select_from(WebhookMessage))
    first = quiet_client.post(CONFIRM, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "confirmed"}  # nothing about the person, nor the prompt
    assert confirmed_count(street, viewer) == 1

    again = quiet_client.post(CONFIRM, content=body, headers=headers)  # the very same request, replayed
    assert (again.status_code, again.json()) == (200, {"status": "already_confirmed"})
    clock.advance(60)
    fresh = confirm(quiet_client, secret, ref, clock.now)  # signed anew
    assert (fresh.status_code, fresh.json()) == (200, {"status": "already_confirmed"})
    assert confirmed_count(street, viewer) == 1

    # The confirmation sends the charity nothing; what it was sent (prompt.accepted) names no person and
    # carries no reference it could match to the visitor of its page.
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(WebhookMessage)) == messages
    decision = session.scalars(select(PromptDecision).where(PromptDecision.outcome == "prompted")).one()
    payloads = [json.loads(m.payload) for m in session.scalars(select(WebhookMessage)).all()]
    assert [p["type"] for p in payloads] == ["prompt.accepted"]
    sent = json.dumps(payloads)
    for personal in (ref, hash_token(ref), str(decision.subscriber_id), decision.subscriber_id.hex):
        assert personal not in sent
    assert set(payloads[0]["data"]) == {"site_id", "campaign_id", "variant_id", "prompted_at", "answered_at"}


def test_the_reference_is_keyed_random_and_stored_only_as_a_hash(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org = street.charity.organisation_id
    set_secret(quiet_client, org, staff(session, org, clock))
    anna, ben = prompted(street), prompted(street)
    ref_a = ref_of(followed(street, anna))
    ref_b = ref_of(followed(street, ben))
    assert ref_of(followed(street, anna)) == ref_a  # following the link again: the same reference
    assert ref_a != ref_b
    session.expire_all()
    rows = {r.decision_id: r for r in session.scalars(select(PromptReference)).all()}
    assert len(rows) == 2  # one per prompt, not one per click
    decisions = session.scalars(select(PromptDecision).where(PromptDecision.id.in_(rows))).all()
    for decision, ref in zip(sorted(decisions, key=lambda d: d.id), (ref_a, ref_b), strict=True):
        row = rows[decision.id]
        assert row.ref_hash == hash_token(ref)
        assert ref not in {str(v) for v in vars(row).values()}  # the clear reference is stored nowhere
        # Keyed with the server's secret: not a function of the prompt's or the person's ids alone.
        assert ref == reference(TEST_SECRET, decision.id)
        assert ref != reference(TEST_SECRET + "-other", decision.id)
        for id_ in (str(decision.id), decision.subscriber_id.hex, str(decision.subscriber_id)):
            assert id_ not in ref
    # Nor does it open the person's prompt page: it is not the landing token.
    assert quiet_client.get(f"/p/{ref_a}").status_code == 404
    assert urlsplit(street.landing(anna)).path.rsplit("/", 1)[1] != ref_a


def test_bad_signatures_and_stale_timestamps_are_refused_and_count_nothing(
    quiet_client, session, clock: Clock
):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org = street.charity.organisation_id
    secret = set_secret(quiet_client, org, staff(session, org, clock))["secret"]
    viewer = staff(session, org, clock, "viewer")
    ref = ref_of(followed(street, prompted(street)))
    body = body_of(ref)
    now = clock.now
    good = signed(secret, body, now)
    refused = {
        "another secret": signed(a_stranger_secret(), body, now),
        "no signature": {k: v for k, v in good.items() if k != "webhook-signature"},
        "no timestamp": {k: v for k, v in good.items() if k != "webhook-timestamp"},
        "no id": {k: v for k, v in good.items() if k != "webhook-id"},
        "another id": {**good, "webhook-id": "msg_other"},
        "another timestamp": {**good, "webhook-timestamp": str(int(now.timestamp()) + 1)},
        "not a timestamp": {**good, "webhook-timestamp": "yesterday"},
        "six minutes old": signed(secret, body, now - timedelta(minutes=6)),
        "six minutes ahead": signed(secret, body, now + timedelta(minutes=6)),
        # The server's clock decides, not the machine's: this test's clock is not the wall clock.
        "by the wall clock": signed(secret, body, datetime.now(UTC) - timedelta(days=3)),
    }
    for why, headers in refused.items():
        answer = quiet_client.post(CONFIRM, content=body, headers=headers)
        assert answer.status_code == 401, why
        assert answer.json()["code"] == "unauthorized"
    other_body = body_of(ref + "x")  # signed for one body, sent with another
    assert quiet_client.post(CONFIRM, content=other_body, headers=good).status_code in {401, 404}
    clock.advance(6 * 60)  # the good request, replayed six minutes later: stale by the server's clock
    assert quiet_client.post(CONFIRM, content=body, headers=good).status_code == 401
    assert confirmed_count(street, viewer) == 0
    session.expire_all()
    assert session.scalars(select(PromptReference.confirmed_at)).one() is None
    # Four minutes old is within the tolerance.
    late = signed(secret, body, clock.now - timedelta(minutes=4))
    assert quiet_client.post(CONFIRM, content=body, headers=late).json() == {"status": "confirmed"}
    assert confirmed_count(street, viewer) == 1


def test_unknown_references_and_malformed_bodies(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org = street.charity.organisation_id
    secret = set_secret(quiet_client, org, staff(session, org, clock))["secret"]
    unknown = confirm(quiet_client, secret, "nr_" + "A" * 24, clock.now)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    malformed = [
        b"",
        b"ref=nr_AAAAAAAAAAAAAAAAAAAAAAAA",
        b"[]",
        b"[" * 50_000 + b"]" * 50_000,  # deep nesting: refused, not a crash
        b"{}",
        b'{"ref": 12345678}',
        b'{"ref": null}',
        b'{"ref": "short"}',
        json.dumps({"ref": "nr_" + "A" * 98}).encode(),
        json.dumps({"ref": "nr_" + "A" * 24, "email": "anna@example.org"}).encode(),
        b'{"ref": "\xff\xfe"}',
    ]
    for body in malformed:
        answer = quiet_client.post(CONFIRM, content=body, headers=signed(secret, body, clock.now))
        assert answer.status_code == 422, body[:40]
        assert answer.headers["content-type"].startswith("application/problem+json")
    too_large = b'{"ref": "' + b"A" * 2_000_000 + b'"}'
    assert (
        quiet_client.post(
            CONFIRM, content=too_large, headers={"content-type": "application/json"}
        ).status_code
        == 413
    )
    assert session.scalar(select(func.count()).select_from(PromptReference)) == 0


def test_a_rotated_secret_keeps_the_old_one_for_the_grace_period_and_delete_turns_it_off(
    quiet_client, session, clock: Clock
):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org = street.charity.organisation_id
    editor = staff(session, org, clock)
    viewer = staff(session, org, clock, "viewer")
    url = f"{API}/organisations/{org}/confirmation-secret"
    assert quiet_client.post(url, headers=viewer).status_code == 403  # editors only
    assert quiet_client.delete(url, headers=editor).status_code == 404  # not on yet
    old = set_secret(quiet_client, org, editor)["secret"]
    ref = ref_of(followed(street, prompted(street)))

    rotated = set_secret(quiet_client, org, editor, grace_hours=1)
    new = rotated["secret"]
    assert new != old
    assert datetime.fromisoformat(rotated["previous_valid_until"]) == clock.now + timedelta(hours=1)
    # The signature is checked before "already": every request below tests it, confirmed or not.
    assert confirm(quiet_client, old, ref, clock.now).json() == {"status": "confirmed"}
    assert confirm(quiet_client, new, ref, clock.now).json() == {"status": "already_confirmed"}
    clock.advance(59 * 60)
    assert confirm(quiet_client, old, ref, clock.now).status_code == 200
    clock.advance(2 * 60)  # the grace period is over
    assert confirm(quiet_client, old, ref, clock.now).status_code == 401
    assert confirm(quiet_client, new, ref, clock.now).status_code == 200

    editor, viewer = (
        staff(session, org, clock),
        staff(session, org, clock, "viewer"),
    )  # the first logins ended
    newest = set_secret(quiet_client, org, editor, grace_hours=0)  # no grace: the old one stops at once
    assert newest["previous_valid_until"] is None
    assert confirm(quiet_client, new, ref, clock.now).status_code == 401
    assert confirm(quiet_client, newest["secret"], ref, clock.now).status_code == 200

    assert quiet_client.delete(url, headers=viewer).status_code == 403
    assert quiet_client.delete(url, headers=editor).status_code == 204
    off = confirm(quiet_client, newest["secret"], ref, clock.now)
    assert (off.status_code, off.json()["code"]) == (403, "forbidden")
    # Switched off, a call to action leads to the charity's page exactly as written.
    assert followed(street, prompted(street)) == CTA
    assert confirmed_count(street, viewer) == 1


def test_one_charitys_secret_does_not_confirm_anothers_prompt(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org_a = street.charity.organisation_id
    tafel = make_charity(session, clock.now, slug="tafel")
    enrol(quiet_client, tafel.enrolment_code)
    editor_a = staff(session, org_a, clock)
    editor_b = staff(session, tafel.organisation_id, clock)
    set_secret(quiet_client, org_a, editor_a)
    secret_b = set_secret(quiet_client, tafel.organisation_id, editor_b)["secret"]
    ref = ref_of(followed(street, prompted(street)))
    answer = confirm(quiet_client, secret_b, ref, clock.now)
    assert answer.status_code == 401
    # B cannot set or delete A's secret either.
    assert (
        quiet_client.post(f"{API}/organisations/{org_a}/confirmation-secret", headers=editor_b).status_code
        == 404
    )
    assert (
        quiet_client.delete(f"{API}/organisations/{org_a}/confirmation-secret", headers=editor_b).status_code
        == 404
    )
    assert confirmed_count(street, staff(session, org_a, clock, "viewer")) == 0


def test_the_count_outlives_withdrawal_and_the_purge(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock, cta_url=CTA)
    org = street.charity.organisation_id
    secret = set_secret(quiet_client, org, staff(session, org, clock))["secret"]
    viewer = staff(session, org, clock, "viewer")
    anna, ben = prompted(street), prompted(street)
    ref_anna, ref_ben = ref_of(followed(street, anna)), ref_of(followed(street, ben))
    assert confirm(quiet_client, secret, ref_anna, clock.now).status_code == 200
    # Anna withdraws before the fold: the count is already in the ledger; her reference goes with her.
    assert quiet_client.delete("/mobile/v1/me", headers=anna.headers).status_code == 204
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PromptReference)) == 1  # ben's alone
    gone = confirm(quiet_client, secret, ref_anna, clock.now)
    assert gone.status_code == 404
    assert confirmed_count(street, viewer) == 1
    assert confirm(quiet_client, secret, ref_ben, clock.now).status_code == 200
    assert confirmed_count(street, viewer) == 2
    clock.advance(timedelta(days=20).total_seconds())
    purge(quiet_client.app.state.runtime.sessions, 14, clock.now)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PromptDecision)) == 0
    assert session.scalar(select(func.count()).select_from(PromptReference)) == 0
    assert confirm(quiet_client, secret, ref_ben, clock.now).status_code == 404
    assert confirmed_count(street, staff(session, org, clock, "viewer")) == 2
