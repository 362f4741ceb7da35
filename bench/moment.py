"""The moment (issue 3/7): from the advertisement that crosses a campaign's threshold to the prompt arriving
at the phone's push service, end to end through the real parts. Prints JSON figures; `python -m bench
moment` runs it in a fresh process and writes the doc section (bench/moment_report.py).

The parts: BlueZ (dbusmock's bluez5 on a private system bus, tests/bluez_mock.py), the street in front of
the window driving it (bench/street.py), `beacon-agent run` (the installed console script, its state
directory enrolled with `beacon-agent enroll`), a relay that stamps the gateway's requests
(bench/moment_peers.py), `nahbar serve` on a PostgreSQL database made for the run, and a Web Push service
(HTTPS, in this process) that decrypts every prompt with the phone's own subscription keys.

One site, two campaigns: a walk-by campaign (volunteering, minimum dwell 0: decided on the enter) and a
campaign at the door (donations, minimum dwell 15 s: decided at the gateway's 15 s dwell mark). Walkers
opted in to volunteering pass the window; those who stop at the door opted in to donations. Some walkers
were asked elsewhere earlier today (the daily cap says no) and some have their own quiet hours now; the
site's time zone puts it at midday, outside every other quiet hour.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from beacon_agent.tracker import HANDOVER_GAP_S
from bench.delivery import database, noon_zone
from bench.moment_peers import Exchange, Push, PushService, Relay, Subscription, make_tls
from bench.serving import end, free_port, server_env, serving
from bench.street import (
    ADVERT_INTERVAL_S,
    HALF_PATH_M,
    SPEED,
    Phone,
    Street,
    Walk,
    distance_for,
    mean_rssi,
    plan,
)

ROOT: Final = Path(__file__).resolve().parent.parent
BIN: Final = Path(sys.executable).parent  # the venv's console scripts: nahbar, beacon-agent
WALKERS: Final = 40
STOPPERS: Final = 20
SPREAD_S: Final = 40.0  # the people's first adverts are spread over this long
CAPPED: Final = 3  # walkers prompted at another door an hour ago: the daily cap of one says no
QUIET: Final = 2  # walkers whose own quiet hours hold now
SEED: Final = 7
MIN_DWELL_S: Final = 15
ENTER_RSSI: Final = -85.0  # the tracker's defaults (the server sends no others here)
EXIT_RSSI: Final = -92.0
SETTLE_S: Final = 15.0  # after the street empties, how long pushes may still come


@dataclass
class World:
    """What the run set up: the server, the peers, the gateway, the phones and their street."""

    url: str
    base: str
    zone: str
    push: PushService
    relay: Relay
    street: Street
    phones: list[Phone]
    subscribers: dict[uuid.UUID, int]  # subscriber id -> phone number
    capped: set[int]
    quiet: set[int]
    server_pid: int
    agent_log: Path


def seed(url: str, zone: str) -> tuple[str, dict[str, int]]:
    """One charity, one site at midday, a walk-by and a door campaign; the gateway's enrolment code and the
    campaigns' ids by kind."""
    from sqlalchemy.orm import Session

    from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
    from server.core.db import make_engine
    from server.sites.models import Site
    from server.sites.service import issue_enrolment_code
    from server.tenancy.models import Organisation, PlatformSettings

    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(PlatformSettings())  # allow_walk_by, one prompt a day, quiet 21:00-08:00
        org = Organisation(slug="hospiz", name="Hospiz e.V.", privacy_contact="dpo@example.org")
        session.add(org)
        session.flush()
        site = Site(organisation_id=org.id, name="Window", timezone=zone, language="de")
        session.add(site)
        session.flush()
        ids = {}
        for kind, name, min_dwell in (("volunteer", "Walk-by", 0), ("donation", "At the door", MIN_DWELL_S)):
            campaign = Campaign(
                organisation_id=org.id,
                name=name,
                kind=kind,
                status="active",
                priority=1,
                min_dwell_s=min_dwell,
            )
            session.add(campaign)
            session.flush()
            ids[kind] = campaign.id
            session.add(CampaignSite(campaign_id=campaign.id, site_id=site.id))
            for language, title in (("de", f"{name}?"), ("en", f"{name}?")):
                session.add(
                    CampaignVariant(
                        campaign_id=campaign.id, language=language, title=title, body="Bitte.", cta_label="Ja"
                    )
                )
        ids["site"] = site.id
        code = issue_enrolment_code(session, site, "window", now).code
        session.commit()
    engine.dispose()
    return code, ids


@contextmanager
def server(url: str, ca_file: Path, log: Path) -> Iterator[tuple[str, int]]:
    """`nahbar serve` (one worker) on the database; yields its base URL and pid."""
    port = free_port()
    env = server_env(
        url,
        NAHBAR_OPTIN_PER_HOUR_PER_CLIENT="10000",
        SSL_CERT_FILE=str(ca_file),  # the push service's certificate authority, and no other
    )
    with serving([str(BIN / "nahbar"), "serve", "--port", str(port)], env, port, log) as served:
        yield served


def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def opt_in(base: str, push: PushService, walks: list[Walk], zone: str) -> tuple[list[Phone], set[int]]:
    """The phones opt in over the mobile API and register a Web Push channel each; the first QUIET walkers
    set quiet hours of their own around now. Returns the phones and those quiet ones."""
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    quiet_hours = {
        "start": (local - timedelta(hours=2)).strftime("%H:%M"),
        "end": (local + timedelta(hours=2)).strftime("%H:%M"),
    }
    rng = random.Random(SEED)
    phones, quiet = [], set()
    walkers = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for number, walk in enumerate(walks):
            scopes = ["volunteer"] if walk.kind == "walker" else ["donation"]
            consent = {"consent_text_version": "2026-11", "scopes": scopes, "language": "de"}
            answer = client.post("/mobile/v1/optin", json=consent)
            answer.raise_for_status()
            body = answer.json()
            me = {"Authorization": f"Bearer {body['device_token']}"}
            subscription = Subscription.new()
            push.subscriptions[number] = subscription
            channel = {
                "kind": "webpush",
                "endpoint": f"{push.url}/push/{number}",
                "keys": subscription.keys(),
            }
            client.post("/mobile/v1/me/push-channels", json=channel, headers=me).raise_for_status()
            if walk.kind == "walker":
                walkers += 1
                if walkers <= QUIET:
                    patch = client.patch(
                        "/mobile/v1/me/preferences", json={"quiet_hours": quiet_hours}, headers=me
                    )
                    patch.raise_for_status()
                    quiet.add(number)
            key, k = bytes.fromhex(body["identity_key"]), body["rotation_exponent"]
            phones.append(Phone(number, key, k, walk, random.Random(rng.random()), body["device_token"]))
    return phones, quiet


def subscribers_of(url: str, phones: list[Phone]) -> dict[uuid.UUID, int]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from server.core.db import make_engine
    from server.core.security import hash_token
    from server.subscribers.models import Subscriber

    engine = make_engine(url)
    with Session(engine) as session:
        ids = dict(session.execute(select(Subscriber.device_token_hash, Subscriber.id)).all())
    engine.dispose()
    return {ids[hash_token(phone.token)]: phone.number for phone in phones}


def asked_earlier(url: str, ids: dict[str, int], zone: str, subscribers: list[uuid.UUID]) -> None:
    """A prompt an hour ago (today at the site) for each of these people: their daily cap is spent."""
    from sqlalchemy.orm import Session

    from server.core.db import make_engine
    from server.prompts.models import PromptDecision

    now = datetime.now(UTC)
    engine = make_engine(url)
    with Session(engine) as session:
        for subscriber in subscribers:
            session.add(
                PromptDecision(
                    subscriber_id=subscriber,
                    site_id=ids["site"],
                    campaign_id=ids["donation"],
                    outcome="prompted",
                    reason="prompted",
                    decided_at=now - timedelta(hours=1),
                    local_day=(now - timedelta(hours=1)).astimezone(ZoneInfo(zone)).date(),
                    day_slot=0,
                    expires_at=now - timedelta(minutes=50),
                )
            )
        session.commit()
    engine.dispose()


@contextmanager
def gateway(relay_url: str, code: str, bus: str, folder: Path) -> Iterator[Path]:
    """`beacon-agent enroll` then `beacon-agent run`, on the private system bus; yields its log."""
    env = os.environ | {
        "BEACON_AGENT_STATE_DIR": str(folder / "state"),
        "BEACON_AGENT_CONFIG": str(folder / "agent.toml"),  # none: the state directory says it all
        "DBUS_SYSTEM_BUS_ADDRESS": bus,
    }
    enroll = [str(BIN / "beacon-agent"), "enroll", "--server", relay_url, "--code", code]
    subprocess.run(enroll, env=env, check=True, capture_output=True, timeout=60)
    log = folder / "agent.log"
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [str(BIN / "beacon-agent"), "run"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        yield log
    finally:
        end(process, 30)


@contextmanager
def world(
    walkers: int, stoppers: int, spread_s: float, interval_s: float, loss: float, rssi_delta: int
) -> Iterator[World]:
    from tests.bluez_mock import MockBlueZ

    folder = Path(tempfile.mkdtemp(prefix="nahbar-moment-"))
    try:
        with ExitStack() as stack:
            tls = make_tls(folder)
            push = PushService(tls)
            stack.callback(push.close)
            url = stack.enter_context(database("postgres"))
            zone = noon_zone(datetime.now(UTC))
            code, ids = seed(url, zone)
            base, pid = stack.enter_context(server(url, tls.ca_file, folder / "server.log"))
            relay = Relay(int(base.rsplit(":", 1)[1]))
            stack.callback(relay.close)
            walks = plan(walkers, stoppers, spread_s, SEED)
            phones, quiet = opt_in(base, push, walks, zone)
            subscribers = subscribers_of(url, phones)
            by_number = {number: subscriber for subscriber, number in subscribers.items()}
            capped = {p.number for p in phones if p.walk.kind == "walker" and p.number not in quiet}
            capped = set(sorted(capped)[:CAPPED])
            asked_earlier(url, ids, zone, [by_number[n] for n in capped])
            bluez = MockBlueZ()
            stack.callback(bluez.close)
            log = stack.enter_context(gateway(relay.url, code, bluez.address, folder))
            _wait(bluez.scanning, 30, "the agent's scan")
            _wait(lambda: any(e.path.endswith("/config") for e in relay.snapshot()), 30, "the gateway config")
            time.sleep(0.5)  # the config applied
            street = Street(bluez, phones, interval_s, loss, rssi_delta)
            stack.callback(street.close)
            yield World(url, base, zone, push, relay, street, phones, subscribers, capped, quiet, pid, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def decisions(url: str) -> list[dict[str, Any]]:
    """Every decision of the run with the event it was made on."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from server.core.db import make_engine
    from server.presence.models import ProximityEvent
    from server.prompts.models import PromptDecision

    engine = make_engine(url)
    query = select(
        PromptDecision.subscriber_id,
        PromptDecision.outcome,
        PromptDecision.reason,
        PromptDecision.decided_at,
        ProximityEvent.idempotency_key,
        ProximityEvent.kind,
        ProximityEvent.received_at,
    ).join(ProximityEvent, ProximityEvent.id == PromptDecision.event_id)
    with Session(engine) as session:
        rows = [dict(row._mapping) for row in session.execute(query)]
    engine.dispose()
    return rows


def measure(
    walkers: int, stoppers: int, spread_s: float, interval_s: float, loss: float, rssi_delta: int = 0
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    with world(walkers, stoppers, spread_s, interval_s, loss, rssi_delta) as w:
        setup_s = time.monotonic() - began
        w.street.open()
        if not w.street.wait(w.street.duration + 30):
            raise RuntimeError("the street did not finish")
        settle = time.monotonic() + SETTLE_S
        while time.monotonic() < settle:
            rows = decisions(w.url)
            prompted = sum(1 for r in rows if r["outcome"] == "prompted")
            if len(w.push.snapshot()) >= prompted:
                break
            time.sleep(0.5)
        time.sleep(1.0)  # a late push would still count
        rows = decisions(w.url)
        exchanges, pushes = w.relay.snapshot(), w.push.snapshot()
        agent_log = w.agent_log.read_text(errors="replace")
        figures = analyse(w, rows, exchanges, pushes)
        figures |= {
            "setup_s": setup_s,
            "street_s": w.street.duration,
            "dbus_calls": w.street.calls,
            "late_ticks": w.street.late_ticks,
            "adverts": sum(len(p.adverts) for p in w.phones),
            "missed": w.street.missed,
            "rssi_delta": rssi_delta,
            "unsignalled": w.street.unsignalled,
            "interval_s": interval_s,
            "loss": loss,
            "zone": w.zone,
            "load": [load_before, os.getloadavg()[0]],
            "agent_warnings": [
                line for line in agent_log.splitlines() if line.startswith(("WARNING", "ERROR"))
            ][:10],
            "eid_rotated": sum(1 for p in w.phones if len(p.eids) > 1),
            "rotations_at_s": _rotations(w),
        }
    return figures


def _rotations(w: World) -> list[float]:
    """When (seconds after the street opened) every phone's EID turned during the run: all at once, since
    the counter is Unix time."""
    period = 2 ** w.phones[0].k
    start, end = w.street.opened_at, w.street.opened_at + w.street.duration
    first = int(start // period + 1) * period
    return [round(t - start, 1) for t in range(first, int(end) + 1, period)]


def _stamp(value: Any) -> float:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def analyse(
    w: World, rows: list[dict[str, Any]], exchanges: list[Exchange], pushes: list[Push]
) -> dict[str, Any]:
    """Per phone: the hops from the advert that crossed the threshold to the push, and who was asked."""
    posted: dict[str, Exchange] = {}
    events_of: dict[str, list[dict[str, Any]]] = {}
    for exchange in exchanges:
        for event in exchange.events:
            posted.setdefault(event["id"], exchange)
            events_of.setdefault(event["eid"], []).append(event)
    push_of: dict[int, Push] = {}
    undecryptable = 0
    for push in sorted(pushes, key=lambda p: p.arrived):
        if push.title is None:
            undecryptable += 1
        else:
            push_of.setdefault(push.phone, push)
    by_phone: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        number = w.subscribers.get(row["subscriber_id"])
        if number is not None:
            by_phone.setdefault(number, []).append(row)
    people = []
    for phone in w.phones:
        events = sorted(
            (e for eid in phone.eids for e in events_of.get(eid, [])), key=lambda e: _stamp(e["observed_at"])
        )
        people.append(
            _person(w, phone, events, by_phone.get(phone.number, []), posted, push_of.get(phone.number))
        )
    return {"people": people, "pushes": len(pushes), "undecryptable": undecryptable}


def _person(
    w: World,
    phone: Phone,
    events: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    posted: dict[str, Exchange],
    push: Push | None,
) -> dict[str, Any]:
    walk, opened = phone.walk, w.street.opened_at
    first_advert = phone.adverts[0][0] if phone.adverts else None
    enter = next((e for e in events if e["kind"] == "enter"), None)
    # When the person's mean RSSI reached the enter threshold, walking in (the tracker's smoothing lags it).
    lateral = walk.lateral_m
    reach = distance_for(ENTER_RSSI)
    physical = opened + walk.start + (HALF_PATH_M - (reach**2 - lateral**2) ** 0.5) / SPEED
    first_eid = next(iter(phone.eids), None)
    person: dict[str, Any] = {
        "events": [
            (e["kind"], e["eid"] != first_eid, round(_stamp(e["observed_at"]) - opened, 2), e.get("dwell_s"))
            for e in events
        ],
        "phone": phone.number,
        "kind": walk.kind,
        "campaign": "walk-by" if walk.kind == "walker" else "door",
        "capped": phone.number in w.capped,
        "quiet": phone.number in w.quiet,
        "adverts": len(phone.adverts),
        "reasons": sorted({str(r["reason"]) for r in rows}),
        "prompted": any(r["outcome"] == "prompted" for r in rows),
    }
    if enter is not None and first_advert is not None:
        person["first_advert_to_enter_posted_s"] = posted[enter["id"]].received - first_advert
        person["rssi_crossing_to_enter_observed_s"] = _stamp(enter["observed_at"]) - physical
        # A new EID entering this soon after it first appeared, when it is not the phone's first, may be a
        # present phone's next EID after a rotation: the tracker holds such an enter for HANDOVER_WAIT_S.
        age = _stamp(enter["observed_at"]) - phone.eids[enter["eid"]]
        person["enter_held_at_rotation"] = enter["eid"] != first_eid and age < HANDOVER_GAP_S
    decided = next((r for r in rows if r["outcome"] == "prompted"), None)
    if decided is None or enter is None:
        return person
    event = next((e for e in events if e["id"] == decided["idempotency_key"]), None)
    if event is None:
        return person
    observed = _stamp(event["observed_at"])
    exchange = posted[event["id"]]
    deciding = _sent_before(phone, observed)
    # The advert that crossed the campaign's threshold: the one the first enter was made on (walk-by), or the
    # first one at or past 15 s after it (at the door). A later deciding event (a rotation re-timed the
    # mark) counts against the moment, as the person feels it.
    entered = _sent_before(phone, _stamp(enter["observed_at"]))
    crossing = entered
    if walk.kind == "stopper":
        crossing = next((t for t, _ in phone.adverts if t >= entered + MIN_DWELL_S), deciding)
    person |= {
        "mark_event": event["kind"],
        "mark_dwell_s": event.get("dwell_s", 0.0),
        "crossing_to_deciding_advert_s": deciding - crossing,
        "advert_to_observed_s": observed - deciding,
        "observed_to_posted_s": exchange.received - observed,
        "posted_to_server_s": _stamp(decided["received_at"]) - exchange.received,
        "posted_to_answered_s": exchange.answered - exchange.received,
        "batch_events": len(exchange.events),
    }
    if push is not None:
        along = walk.along(push.arrived - opened)
        distance = walk.distance(push.arrived - opened)
        # The same from physics rather than from the agent's crossing advert: from the moment the walker's
        # mean RSSI reached the enter threshold, or from 15 s after the enter's advert at the door.
        due = physical if walk.kind == "walker" else entered + MIN_DWELL_S
        person |= {
            "due_to_push_s": push.arrived - due,
            "advert_to_push_s": push.arrived - crossing,
            "posted_to_push_s": push.arrived - exchange.received,
            "answered_to_push_s": push.arrived - exchange.answered,
            "urgency": push.urgency,
            "along_m_at_push": along,
            "in_range_at_push": distance is not None and mean_rssi(distance) >= EXIT_RSSI,
        }
    return person


def _sent_before(phone: Phone, at: float) -> float:
    """When the street sent the phone's last advert at or before `at` (the agent stamps what it hears)."""
    sent = [t for t, _ in phone.adverts if t <= at]
    return sent[-1] if sent else at


def main(argv: list[str]) -> int:
    # SIGTERM ends the run as Ctrl-C does: through the cleanups (processes, the database).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    parser = argparse.ArgumentParser(prog="python -m bench.moment")
    parser.add_argument("--walkers", type=int, default=WALKERS)
    parser.add_argument("--stoppers", type=int, default=STOPPERS)
    parser.add_argument("--spread", type=float, default=SPREAD_S, help="seconds over which people arrive")
    parser.add_argument(
        "--interval", type=float, default=ADVERT_INTERVAL_S, help="phones' advertising interval, s"
    )
    parser.add_argument("--loss", type=float, default=0.0, help="share of adverts the gateway does not hear")
    parser.add_argument(
        "--rssi-delta",
        type=int,
        default=0,
        help="BlueZ signals no RSSI change smaller than this (dB); 8 passive",
    )
    args = parser.parse_args(argv)
    figures = measure(args.walkers, args.stoppers, args.spread, args.interval, args.loss, args.rssi_delta)
    print(json.dumps(figures, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
