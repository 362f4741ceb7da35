"""The outbox sender's rules on both databases: two senders on one database (two processes) send every due
push exactly once; a prompt that expires while its push waits for a retry is never sent; a process without a
running sender (scheduler only) sends in the sweep's own thread; a send's outcome is recorded only while its
claim holds."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.campaigns.models import CampaignVariant
from server.core.config import Settings
from server.core.db import make_engine, make_sessionmaker
from server.core.security import KeySealer
from server.delivery.service import Outbox
from server.delivery.tasks import sweep
from server.prompts.models import Delivery, PromptDecision
from server.runtime import Runtime
from server.subscribers.models import Subscriber
from tests.conftest import TEST_SECRET, Clock
from tests.delivery_world import Browser, Peer, add_channel, deliveries, passer_by, subscriber_of, walk_past
from tests.world import Charity, make_charity


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    return settings.model_copy(
        update={
            "vapid_private_key": SecretStr(pem.decode()),
            "vapid_subject": "mailto:push-ops@nahbar.example.org",
        }
    )


@pytest.fixture
def peer() -> Iterator[Peer]:
    peer = Peer()
    yield peer
    peer.close()


def queue_pushes(session: Session, charity: Charity, url: str, count: int, now: datetime) -> None:
    """`count` people prompted now, each with one due Web Push delivery to `{url}/push/{n}`; written into the
    database as the decision's transaction leaves them, so only the sender is at work."""
    keys = Browser.new().keys()
    variant = session.scalars(
        select(CampaignVariant.id).where(
            CampaignVariant.campaign_id == charity.campaign_id, CampaignVariant.language == "en"
        )
    ).one()
    sealer = KeySealer(TEST_SECRET)
    for n in range(count):
        person_id = uuid.uuid4()
        person = Subscriber(
            id=person_id,
            device_token_hash=f"{n:064x}",
            identity_key_sealed=sealer.seal(os.urandom(16), person_id.bytes),
            rotation_exponent=10,
            scopes=["volunteer"],
        )
        session.add(person)
        session.flush()
        channel = add_channel(session, person.id, "webpush", f"{url}/push/{n}", **keys)
        decision = session.scalar(
            insert(PromptDecision)
            .values(
                subscriber_id=person.id,
                site_id=charity.site_id,
                campaign_id=charity.campaign_id,
                variant_id=variant,
                outcome="prompted",
                reason="prompted",
                decided_at=now,
                expires_at=now + timedelta(minutes=10),
            )
            .returning(PromptDecision.id)
        )
        session.execute(
            insert(Delivery).values(
                decision_id=decision,
                channel_kind="webpush",
                channel_id=channel,
                status="pending",
                next_attempt_at=now,
            )
        )
    session.commit()


def wait_until(condition, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_two_senders_on_one_database_send_every_push_exactly_once(push_settings, session, clock: Clock, peer):
    count = 60
    queue_pushes(session, make_charity(session, clock()), peer.url, count, clock())
    engines = [make_engine(push_settings.database_url) for _ in range(2)]
    # Small pipelines, so each sender claims many times while the other does too.
    outboxes = [Outbox(push_settings, make_sessionmaker(e), clock, senders=2, in_flight=3) for e in engines]
    try:
        for outbox in outboxes:
            outbox.start()
        peer.wait_for(count)
        wait_until(
            lambda: all(d.status == "sent" for d in deliveries(session)),
            "not every delivery recorded as sent",
        )
    finally:
        for outbox in outboxes:
            outbox.stop()
        for engine in engines:
            engine.dispose()
    assert sorted(r.path for r in peer.received) == sorted(f"/push/{n}" for n in range(count))
    assert {(d.status, d.attempts, d.sent_at) for d in deliveries(session)} == {("sent", 1, clock())}


def test_a_prompt_that_expires_while_its_push_waits_for_a_retry_is_not_sent(push_settings, session, clock):
    busy = Peer(answers=[(503, {}, b""), (201, {}, b"")])
    try:
        with TestClient(create_app(push_settings, clock=clock)) as client:
            _charity, gateway, phone = passer_by(client, session, clock())
            person = subscriber_of(session, phone)
            add_channel(session, person.id, "webpush", f"{busy.url}/busy", **Browser.new().keys())
            walk_past(client, gateway, phone, clock())
            busy.wait_for(1)
            wait_until(lambda: deliveries(session, "webpush")[0].last_error, "the 503 was not recorded")
            [waiting] = deliveries(session, "webpush")
            assert (waiting.status, waiting.attempts) == ("pending", 1)
            assert waiting.next_attempt_at > clock()

            clock.advance(601)  # past the retry's time and the prompt's ten minutes
            sweep(client.app.state.runtime)
            wait_until(lambda: deliveries(session, "webpush")[0].status == "expired", "not expired")
            sweep(client.app.state.runtime)  # a second sweep finds nothing to send either
        assert len(busy.received) == 1, "an expired prompt was pushed"
    finally:
        busy.close()


def test_without_a_running_sender_the_sweep_sends_in_its_own_thread(push_settings, session, clock, peer):
    queue_pushes(session, make_charity(session, clock()), peer.url, 3, clock())
    runtime = Runtime.build(push_settings, clock)  # no app: nothing attached an outbox to its sessions
    try:
        sweep(runtime)
    finally:
        runtime.close()
    assert sorted(r.path for r in peer.received) == ["/push/0", "/push/1", "/push/2"]
    assert {(d.status, d.attempts) for d in deliveries(session)} == {("sent", 1)}


def test_an_outcome_is_recorded_only_while_its_claim_holds(session, clock: Clock):
    """A send whose lease ran out and was claimed again (its attempts moved on) must not overwrite the newer
    claim's row; the current claim's outcome is recorded, on both databases."""
    from server.delivery import repository
    from server.delivery.repository import Finish

    charity = make_charity(session, clock())
    queue_pushes(session, charity, "http://127.0.0.1:9", 2, clock())
    first = repository.claim(session, clock(), lease_s=30, limit=2)
    session.commit()
    assert [d.claimed[1] for d in first] == [1, 1]
    clock.advance(31)  # both leases ran out: the rows are due again, and claimed again
    again = repository.claim(session, clock(), lease_s=30, limit=2)
    session.commit()
    assert [d.claimed for d in again] == [(d.claimed[0], 2) for d in first]

    stale = [Finish(d.claimed, {"status": "sent", "sent_at": clock(), "last_error": None}) for d in first]
    assert repository.finish(session, stale) == 0  # the old claims record nothing
    current = Finish(again[0].claimed, {"status": "sent", "sent_at": clock(), "last_error": None})
    retry = Finish(again[1].claimed, {"next_attempt_at": clock() + timedelta(seconds=5), "last_error": "503"})
    assert repository.finish(session, [current, retry]) == 2
    session.commit()
    rows = {d.id: d for d in deliveries(session, "webpush")}
    assert rows[again[0].claimed[0]].status == "sent"
    assert (rows[again[1].claimed[0]].status, rows[again[1].claimed[0]].last_error) == ("pending", "503")
    assert all(d.attempts == 2 for d in rows.values())
