"""The uplink against a fake server at the HTTP edge (httpx.MockTransport) and against the real server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from beacon_agent.models import PresenceEvent
from beacon_agent.outbox import Outbox
from beacon_agent.uplink import BACKOFF_CAP_S, Outcome, Uplink, parse_retry_after
from mobile_api.eid import eid
from tests.conftest import Clock
from tests.world import make_charity

T0 = datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC)
TOKEN = "ngw_test-token"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def event(n: int, **changes: object) -> PresenceEvent:
    base = PresenceEvent(f"evt-{n:06d}", "enter", f"{n:016x}", T0 + timedelta(seconds=n), -61.5, 1.75)
    return replace(base, **changes)


class FakeServer:
    """Answers /gateway/v1/events like server/presence/endpoints.py, unless told to answer otherwise."""

    def __init__(self, token: str = TOKEN, max_items: int = 500) -> None:
        self.token = token
        self.max_items = max_items
        self.stored: list[str] = []
        self.requests: list[httpx.Request] = []
        self.script: list[Answer] = []  # answers to give first, in order

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer(request) if callable(answer) else answer
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return problem(401, "unauthorized", "Unknown or revoked gateway token; enrol the gateway again.")
        items = json.loads(request.content)["events"]
        if len(items) > self.max_items:
            return problem(413, "payload_too_large", "Request bodies are limited; send smaller batches.")
        return self.ingest(items)

    def ingest(self, items: list[dict[str, object]]) -> httpx.Response:
        result: dict[str, list[object]] = {"accepted": [], "duplicates": [], "rejected": []}
        for index, item in enumerate(items):
            if not -127 <= float(item["rssi"] or 0) <= 20:  # type: ignore[arg-type]
                error = {
                    "field": f"events[{index}].rssi",
                    "message": "Input should be less than or equal to 20",
                }
                result["rejected"].append({"index": index, "id": item["id"], "errors": [error]})
            elif item["id"] in self.stored:
                result["duplicates"].append(item["id"])
            else:
                self.stored.append(str(item["id"]))
                result["accepted"].append(item["id"])
        if not result["rejected"]:
            return httpx.Response(200, json=result | {"prompts": 0})
        detail = f"{len(result['rejected'])} of {len(items)} events rejected; the others were stored."
        return problem(422, "validation_failed", detail, **result, prompts=0)

    def stores_then_loses_the_answer(self, request: httpx.Request) -> httpx.Response:
        self.ingest(json.loads(request.content)["events"])
        raise httpx.ReadTimeout("the link dropped before the answer arrived", request=request)


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: object):
    body = {"type": f"https://nahbar.org/problems/{code}", "title": code, "status": status, "code": code}
    content = json.dumps(body | {"detail": detail, **extra})
    headers = {"content-type": "application/problem+json", **(headers or {})}
    return httpx.Response(status, content=content, headers=headers)


class Sleeps:
    """The injected sleep: records each wait, and sets `stop` after `limit` waits."""

    def __init__(self, stop: asyncio.Event | None = None, limit: int = 1_000) -> None:
        self.waits: list[float] = []
        self.stop, self.limit = stop, limit

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.stop is not None and len(self.waits) >= self.limit:
            self.stop.set()
        await asyncio.sleep(0.001)


@pytest.fixture
def outbox(tmp_path: Path):
    with Outbox(tmp_path / "outbox.db", clock=lambda: T0) as box:
        yield box


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
async def client(server: FakeServer):
    async with httpx.AsyncClient(base_url="http://nahbar.test", transport=httpx.MockTransport(server)) as c:
        yield c


def uplink(client: httpx.AsyncClient, outbox: Outbox, **options) -> Uplink:
    options.setdefault("sleep", Sleeps())
    return Uplink(client, outbox, TOKEN, clock=lambda: T0, **options)


async def test_200_acks_the_batch_sent_with_token_and_timeouts(client, server: FakeServer, outbox: Outbox):
    outbox.put([event(1), event(2), event(3, rssi=None, distance_m=None)])
    link = uplink(client, outbox, batch_size=2)

    first = await link.flush_once()

    assert (first.outcome, first.sent, first.acked) == (Outcome.ACKED, 2, 2)
    [request] = server.requests
    assert request.url == "http://nahbar.test/gateway/v1/events"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {"events": [event(1).to_wire(), event(2).to_wire()]}
    assert all(request.extensions["timeout"][phase] for phase in ("connect", "read", "write", "pool"))
    assert [e.id for e in outbox.peek(10)] == ["evt-000003"]
    assert (await link.flush_once()).acked == 1
    assert (await link.flush_once()).outcome is Outcome.EMPTY
    assert server.stored == ["evt-000001", "evt-000002", "evt-000003"]
    stats = link.stats()
    assert (stats.sent, stats.acked, stats.failures, stats.last_error) == (3, 3, 0, None)


async def test_an_answer_lost_after_storing_is_resent_and_acked_as_duplicates(client, server, outbox):
    outbox.put([event(1), event(2)])
    server.script = [server.stores_then_loses_the_answer]
    link = uplink(client, outbox)

    assert (await link.flush_once()).outcome is Outcome.RETRY
    assert outbox.depth() == 2
    again = await link.flush_once()

    assert (again.outcome, again.acked) == (Outcome.ACKED, 2)
    assert json.loads(server.requests[-1].content)["events"][0]["id"] == "evt-000001"
    assert outbox.depth() == 0
    assert server.stored == ["evt-000001", "evt-000002"]


async def test_422_sets_the_rejected_aside_and_acks_the_others(client, server, outbox: Outbox):
    outbox.put([event(1), event(2, rssi=99.0), event(3)])
    link = uplink(client, outbox)

    result = await link.flush_once()

    assert (result.outcome, result.status, result.acked, result.set_aside) == (Outcome.PARTIAL, 422, 2, 1)
    assert outbox.depth() == 0
    [aside] = outbox.set_aside_events()
    assert aside.event == event(2, rssi=99.0)
    assert aside.reason == "events[1].rssi: Input should be less than or equal to 20"
    assert outbox.stats().set_aside == link.stats().set_aside == 1
    assert server.stored == ["evt-000001", "evt-000003"]


async def test_a_422_naming_only_the_index_sets_aside_the_right_event(client, server, outbox: Outbox):
    outbox.put([event(1), event(2)])
    rejected = [{"index": 1, "id": None, "errors": [{"field": "events[1].id", "message": "bad pattern"}]}]
    server.script = [problem(422, "validation_failed", "1 of 2", accepted=["evt-000001"], rejected=rejected)]

    assert (await uplink(client, outbox).flush_once()).outcome is Outcome.PARTIAL
    assert [(a.event.id, a.reason) for a in outbox.set_aside_events()] == [
        ("evt-000002", "events[1].id: bad pattern")
    ]
    assert outbox.depth() == 0


async def test_401_keeps_everything_and_stops_sending_until_a_new_token(client, server, outbox, caplog):
    outbox.put([event(1), event(2)])
    server.token = "ngw_after-re-enrolment"
    link = uplink(client, outbox)

    with caplog.at_level(logging.ERROR, logger="beacon_agent.uplink"):
        refused = await link.flush_once()
    assert (refused.outcome, refused.status) == (Outcome.UNAUTHORIZED, 401)
    assert "token refused: re-enrol" in caplog.text
    assert (await link.flush_once()).outcome is Outcome.UNAUTHORIZED
    assert len(server.requests) == 1, "a refused token must not be sent again and again"
    assert outbox.depth() == 2
    assert link.stats().token_refused

    link.set_token("ngw_after-re-enrolment")
    assert (await link.flush_once()).acked == 2
    assert not link.stats().token_refused


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `condition` until it holds; fail after `seconds` rather than hang."""
    for _ in range(int(seconds / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached in time")


async def test_run_parks_on_403_and_resumes_after_set_token(client, server, outbox: Outbox):
    outbox.put([event(1)])
    server.script = [problem(403, "forbidden", "This gateway is disabled.")]
    stop = asyncio.Event()
    sleeps = Sleeps()
    link = uplink(client, outbox, sleep=sleeps)
    task = asyncio.create_task(link.run(stop))

    await eventually(lambda: link.stats().token_refused)
    await asyncio.sleep(0.01)
    assert (len(server.requests), outbox.depth(), sleeps.waits) == (1, 1, [])
    link.set_token(TOKEN)
    await eventually(lambda: outbox.depth() == 0)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert server.stored == ["evt-000001"]


async def test_413_halves_the_batch_until_it_fits(client, server: FakeServer, outbox: Outbox):
    server.max_items = 59
    outbox.put([event(n) for n in range(120)])
    link = uplink(client, outbox, batch_size=200)

    outcomes = [(await link.flush_once()).outcome for _ in range(6)]

    assert outcomes == [Outcome.TOO_LARGE, Outcome.TOO_LARGE] + [Outcome.ACKED] * 4
    assert [len(json.loads(r.content)["events"]) for r in server.requests] == [120, 60, 30, 30, 30, 30]
    assert link.batch_size == 30
    assert sorted(server.stored) == [f"evt-{n:06d}" for n in range(120)]
    assert outbox.depth() == 0


async def test_413_for_a_single_event_sets_it_aside(client, server: FakeServer, outbox: Outbox):
    server.max_items = 0
    outbox.put([event(1)])
    result = await uplink(client, outbox, batch_size=1).flush_once()
    assert (result.outcome, result.set_aside) == (Outcome.REFUSED, 1)
    assert outbox.set_aside_events()[0].reason.startswith("HTTP 413: Request bodies are limited")


@pytest.mark.parametrize("status", [400, 404, 409])
async def test_other_4xx_set_the_batch_aside_counted_and_backed_off(client, server, outbox, status, caplog):
    outbox.put([event(1), event(2)])
    server.script = [problem(status, "nope", "Not like this.")]
    link = uplink(client, outbox, jitter=lambda ceiling: ceiling)

    with caplog.at_level(logging.ERROR, logger="beacon_agent.uplink"):
        result = await link.flush_once()

    assert (result.outcome, result.set_aside, result.delay) == (Outcome.REFUSED, 2, 1.0)
    assert {a.reason for a in outbox.set_aside_events()} == {f"HTTP {status}: Not like this."}
    assert (outbox.depth(), link.stats().set_aside, link.stats().failures) == (0, 2, 1)
    assert "set aside" in caplog.text
    assert (await link.flush_once()).outcome is Outcome.EMPTY


async def test_429_retry_after_is_the_minimum_wait(client, server, outbox: Outbox):
    outbox.put([event(1)])
    server.script = [problem(429, "too_many_requests", "Slow down.", headers={"Retry-After": "7"})]
    stop = asyncio.Event()
    sleeps = Sleeps(stop, limit=2)

    await asyncio.wait_for(uplink(client, outbox, sleep=sleeps).run(stop), 5)

    assert sleeps.waits[0] >= 7
    assert server.stored == ["evt-000001"]


async def test_retry_after_as_an_http_date(client, server, outbox: Outbox):
    outbox.put([event(1)])
    when = format_datetime(T0 + timedelta(seconds=90), usegmt=True)
    server.script = [problem(503, "unavailable", "Maintenance.", headers={"Retry-After": when})]
    result = await uplink(client, outbox).flush_once()
    assert result.outcome is Outcome.RETRY
    assert 90 <= result.delay <= 91
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:00 GMT", T0) == 0  # in the past: no extra wait
    assert parse_retry_after("soon", T0) is None
    assert parse_retry_after(None, T0) is None


async def test_500_then_200_loses_nothing_and_duplicates_nothing(client, server, outbox: Outbox):
    outbox.put([event(n) for n in range(10)])
    server.script = [
        problem(500, "internal", "Oops."),
        problem(502, "bad_gateway", "Proxy."),
        httpx.Response(504),
    ]
    stop = asyncio.Event()
    sleeps = Sleeps(stop, limit=4)  # three backoffs, then the idle wait of an empty outbox
    link = uplink(client, outbox, batch_size=4, sleep=sleeps, jitter=lambda ceiling: ceiling)

    await asyncio.wait_for(link.run(stop), 5)

    assert server.stored == [f"evt-{n:06d}" for n in range(10)]
    assert outbox.depth() == 0
    assert sleeps.waits == [1.0, 2.0, 4.0, 2.0]  # the last one is the idle poll
    stats = link.stats()
    assert (stats.acked, stats.failures, stats.consecutive_failures) == (10, 3, 0)
    assert stats.last_error == "HTTP 504: Gateway Timeout"


async def test_connection_errors_back_off_exponentially_up_to_the_cap(client, server, outbox: Outbox):
    outbox.put([event(1)])
    server.script = [httpx.ConnectError("no route to host") for _ in range(12)]
    stop = asyncio.Event()
    sleeps = Sleeps(stop, limit=12)

    await asyncio.wait_for(uplink(client, outbox, sleep=sleeps, jitter=lambda ceiling: ceiling).run(stop), 5)

    assert sleeps.waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert outbox.depth() == 1
    assert uplink(client, outbox).stats().consecutive_failures == 0  # a fresh uplink starts afresh


async def test_full_jitter_stays_under_the_ceiling_and_timeouts_keep_events(client, server, outbox: Outbox):
    outbox.put([event(1)])
    server.script = [httpx.ReadTimeout("slow Wi-Fi") for _ in range(20)]
    link = uplink(client, outbox)
    delays = [(await link.flush_once()).delay for _ in range(20)]
    ceilings = [min(BACKOFF_CAP_S, 2.0**n) for n in range(20)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) > 1
    assert link.stats().last_error == "ReadTimeout: slow Wi-Fi"
    assert outbox.depth() == 1


async def test_a_captive_portal_200_acknowledges_nothing(client, server, outbox: Outbox):
    outbox.put([event(1)])
    server.script = [httpx.Response(200, html="<html>Please log in to CafeWiFi</html>")]
    result = await uplink(client, outbox).flush_once()
    assert (result.outcome, outbox.depth()) == (Outcome.RETRY, 1)


# --- Against the real server over a loopback port, on SQLite and PostgreSQL -------------------------------


async def test_flush_to_the_real_server_prompts_the_phone_and_a_resend_is_a_duplicate(
    live_server, session, clock: Clock, tmp_path: Path
):
    code = make_charity(session, clock()).enrolment_code
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        enrolled = await http.post("/gateway/v1/enroll", json={"code": code})
        assert enrolled.status_code == 200, enrolled.text
        consent = {"consent_text_version": "2026-11", "scopes": ["volunteer", "donation"], "language": "de"}
        opted = (await http.post("/mobile/v1/optin", json=consent)).json()
        phone_eid = eid(
            bytes.fromhex(opted["identity_key"]), int(clock().timestamp()), opted["rotation_exponent"]
        )
        events = [
            PresenceEvent("evt-live-0001", "enter", phone_eid.hex(), clock(), -60.0, 1.5),
            PresenceEvent("evt-live-0002", "dwell", phone_eid.hex(), clock(), -58.5, 1.2, dwell_s=20.0),
        ]
        device = {"Authorization": f"Bearer {opted['device_token']}"}

        with Outbox(tmp_path / "outbox.db") as box:
            link = Uplink(http, box, enrolled.json()["token"], sleep=Sleeps())
            box.put(events)
            first = await link.flush_once()
            assert (first.outcome, first.acked, box.depth()) == (Outcome.ACKED, 2, 0)
            inbox = (await http.get("/mobile/v1/me/prompts", headers=device)).json()["prompts"]
            assert [(p["title"], p["language"]) for p in inbox] == [("Helfen?", "de")]

            box.put(events)
            again = await link.flush_once()
            assert (again.outcome, again.acked, box.depth()) == (Outcome.ACKED, 2, 0)
            assert (await http.get("/mobile/v1/me/prompts", headers=device)).json()["prompts"] == inbox

            late = replace(events[0], id="evt-live-0003", observed_at=clock() + timedelta(hours=1))
            box.put([late, replace(events[1], id="evt-live-0004")])
            partial = await link.flush_once()
            assert (partial.outcome, partial.acked, partial.set_aside) == (Outcome.PARTIAL, 1, 1)
            [aside] = box.set_aside_events()
            assert (aside.event.id, aside.reason) == (
                "evt-live-0003",
                "events[0].observed_at: lies in the future; check the clock",
            )
            assert box.stats().acked == 5
