"""Proof under load (issue 20/7): `nahbar serve --workers 4` on PostgreSQL, gateways' event batches offered
at a rate that rises in steps until the server is overloaded; `python -m bench load [--quick]`.

The world (bench/load_world.py): a database made for the run (dropped after), charities with one site and
one enrolled gateway per site, subscribers opted in (seeded in bulk, keys sealed as the opt-in seals them).
Then open-loop traffic, step by step: POST /gateway/v1/events batches whose events carry the current EIDs of
people walking past that gateway (an enter, later a dwell, then an exit; a few regulars pass far more often
than the rest, so the caps are reached), a resend of some batches as a gateway whose answer was lost would
(duplicates), iOS sightings on POST /mobile/v1/sightings, and admin reads. A request leaves at its time
whether or not the earlier ones were answered. After the steps, the database is asked whether anyone was
prompted beyond the daily or weekly cap and whether every event answered as accepted was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import report
from bench.cpu_sampler import CpuSampler
from bench.delivery import percentile, run_loop
from bench.load_world import Gateway, Person, World, seed, server
from bench.policy import create_database, drop_database

WORKERS: Final = 4
BATCH: Final = 5  # events per gateway POST
MOBILE_SHARE: Final = 0.05  # iOS sightings, as a share of the events offered
ADMIN_PER_S: Final = 2.0  # admin reads a second, in every step
RESEND_SHARE: Final = 0.02  # batches sent again after their answer (a lost answer): all duplicates
REGULAR_SHARE: Final = 0.3  # of the visits, by the 1 % of people who pass every day
DWELL_AFTER_S: Final = 15.0  # a visit's dwell event is due this long after its enter; its exit after twice
# A step is overloaded when the server accepted less than this share of the events offered, refused more
# than this share of the requests with 503, or its p99 latency passed this.
ACCEPTED_MIN: Final = 0.95
REFUSED_MAX: Final = 0.01
P99_MAX_S: Final = 2.0
TIMEOUT_S: Final = 15.0
QUICK_NOTE: Final = " **These are the figures of a `--quick` run.**"


@dataclass(frozen=True)
class Scale:
    gateways: int
    subscribers: int
    charities: int
    mobile: int  # subscribers with a device token (iOS)
    steps: tuple[int, ...]  # events a second offered
    step_s: float


FULL: Final = Scale(1_000, 100_000, 50, 5_000, (50, 100, 200, 400, 800, 1_600, 3_200, 6_400), 30.0)
QUICK: Final = Scale(100, 10_000, 10, 1_000, (50, 200, 800, 1_600, 3_200), 6.0)


@dataclass
class Sent:
    kind: str  # events | resend | sighting | admin
    step: int
    status: int  # 0: no answer (the connection failed or timed out)
    seconds: float  # from sending to the answer
    late_s: float  # how late the generator sent it
    offered: int = 0  # events in it
    accepted: int = 0
    duplicates: int = 0
    prompts: int = 0
    code: str = ""


@dataclass
class Visit:
    person: Person
    started: float
    stage: int = 0  # 0 entered, 1 dwell sent
    key: int = 0


@dataclass
class Traffic:
    """What the generator offered and what came back, for the checks."""

    world: World
    rng: random.Random
    sent: list[Sent] = field(default_factory=list)
    open_visits: dict[int, list[Visit]] = field(default_factory=lambda: defaultdict(list))
    accepted: set[tuple[int, str]] = field(default_factory=set)  # (gateway id, event id)
    duplicates: set[tuple[int, str]] = field(default_factory=set)
    refused: set[tuple[int, str]] = field(default_factory=set)  # in a batch answered 503
    unknown: set[tuple[int, str]] = field(default_factory=set)  # in a batch that got no answer
    sightings_stored: set[tuple[str, str]] = field(default_factory=set)  # (subscriber id, sighting id)
    eids: dict[tuple[int, int], str] = field(default_factory=dict)
    counter: int = 0

    def __post_init__(self) -> None:
        self.mobile = [p for p in self.world.people if p.token is not None]

    def person(self) -> Person:
        people = self.world.people
        if self.rng.random() < REGULAR_SHARE:
            return people[self.rng.randrange(max(1, len(people) // 100))]
        return people[self.rng.randrange(len(people))]

    def eid(self, person: Person, now: float) -> str:
        from mobile_api.eid import eid, window_start

        window = window_start(int(now), person.k)
        key = (person.id.int, window)
        found = self.eids.get(key)
        if found is None:
            found = self.eids[key] = eid(person.identity_key, int(now), person.k).hex()
        return found

    def batch(self, gateway: Gateway) -> list[dict[str, Any]]:
        """BATCH events for this gateway: the due dwells and exits of the people at its window, then enters
        of people arriving."""
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        events = []
        visits = self.open_visits[gateway.id]
        for visit in list(visits):
            if len(events) >= BATCH:
                break
            since = now - visit.started
            if visit.stage == 0 and since >= DWELL_AFTER_S:
                visit.stage = 1
                events.append(self._event(visit, "dwell", since, stamp, -62.0))
            elif visit.stage == 1 and since >= 2 * DWELL_AFTER_S:
                visits.remove(visit)
                events.append(self._event(visit, "exit", since, stamp, -90.0))
        while len(events) < BATCH:
            self.counter += 1
            visit = Visit(self.person(), now, key=self.counter)
            visits.append(visit)
            events.append(self._event(visit, "enter", 0.0, stamp, -75.0))
        return events

    def _event(self, visit: Visit, kind: str, dwell: float, stamp: str, rssi: float) -> dict[str, Any]:
        return {
            "id": f"v{visit.key:09d}-{kind}",
            "kind": kind,
            "eid": self.eid(visit.person, time.time()),
            "observed_at": stamp,
            "rssi": rssi,
            "distance_m": 2.0,
            "dwell_s": round(dwell, 1),
        }


async def _send(
    traffic: Traffic, pool: Any, kind: str, step: int, due: float, gateway: Gateway | None = None
) -> None:
    from bench.http_load import HttpError

    await asyncio.sleep(max(0.0, due - time.monotonic()))
    sent_at = time.monotonic()
    world = traffic.world
    record = Sent(kind, step, 0, 0.0, sent_at - due)
    ids: list[tuple[int, str]] = []
    body: bytes | None = None
    person: Person | None = None
    try:
        if kind == "events":
            assert gateway is not None
            events = traffic.batch(gateway)
            ids = [(gateway.id, e["id"]) for e in events]
            record.offered = len(events)
            body = json.dumps({"events": events}).encode()
            status, answer = await pool.post(
                "/gateway/v1/events", body, {"Authorization": f"Bearer {gateway.token}"}
            )
        elif kind == "sighting":
            person = traffic.rng.choice(traffic.mobile)
            site = traffic.rng.choice(world.gateways)
            traffic.counter += 1
            sighting_id = f"ios-{traffic.counter:09d}"
            record.offered = 1
            ids = [(0, sighting_id)]
            body = json.dumps(
                {
                    "id": sighting_id,
                    "kind": "enter",
                    "uuid": "f7826da6-4fa2-4e98-8024-bc5b71e0893e",
                    "major": site.major,
                    "observed_at": datetime.now(UTC).isoformat(),
                    "rssi": -70.0,
                }
            ).encode()
            status, answer = await pool.post(
                "/mobile/v1/sightings", body, {"Authorization": f"Bearer {person.token}"}
            )
        else:
            org = traffic.rng.choice(world.organisation_ids)
            path = traffic.rng.choice(
                (
                    "/admin/api/v1/decisions?limit=50",
                    "/admin/api/v1/sites?limit=50",
                    f"/admin/api/v1/organisations/{org}/impact/funnel",
                )
            )
            status, answer = await pool.get(path, {"Authorization": f"Bearer {world.admin_token}"})
    except HttpError as exc:
        record.seconds = time.monotonic() - sent_at
        record.code = type(exc).__name__
        traffic.unknown.update(ids)
        traffic.sent.append(record)
        return
    record.seconds = time.monotonic() - sent_at
    record.status = status
    if status == 503:
        record.code = json.loads(answer).get("code", "")
        traffic.refused.update(ids)
    elif kind == "events" and status in (200, 422):
        result = json.loads(answer)
        assert gateway is not None
        record.accepted = len(result["accepted"])
        record.duplicates = len(result["duplicates"])
        record.prompts = int(result["prompts"])
        traffic.accepted.update((gateway.id, i) for i in result["accepted"])
        traffic.duplicates.update((gateway.id, i) for i in result["duplicates"])
        if body is not None and traffic.rng.random() < RESEND_SHARE:
            await _resend(traffic, pool, step, gateway, body)
    elif kind == "sighting" and status == 200:
        result = json.loads(answer)
        record.accepted = int(result["stored"])
        record.duplicates = int(result["duplicate"])
        record.prompts = int(result["prompt"] is not None)
        if result["stored"] and person is not None:
            traffic.sightings_stored.add((str(person.id), ids[0][1]))
    elif status != 200:
        record.code = answer[:120].decode(errors="replace")
    traffic.sent.append(record)


async def _resend(traffic: Traffic, pool: Any, step: int, gateway: Gateway, body: bytes) -> None:
    """The same batch again, as a gateway whose answer was lost sends it: every event a duplicate."""
    from bench.http_load import HttpError

    began = time.monotonic()
    record = Sent("resend", step, 0, 0.0, 0.0, offered=len(json.loads(body)["events"]))
    try:
        status, answer = await pool.post(
            "/gateway/v1/events", body, {"Authorization": f"Bearer {gateway.token}"}
        )
    except HttpError as exc:
        record.code = type(exc).__name__
        traffic.sent.append(record)
        return
    record.seconds, record.status = time.monotonic() - began, status
    if status == 200:
        result = json.loads(answer)
        record.accepted, record.duplicates = len(result["accepted"]), len(result["duplicates"])
        traffic.accepted.update((gateway.id, i) for i in result["accepted"])
        traffic.duplicates.update((gateway.id, i) for i in result["duplicates"])
    traffic.sent.append(record)


async def _step(traffic: Traffic, pool: Any, step: int, rate: float, seconds: float) -> None:
    """Every request of one step, each at its own time (open loop); returns when all were answered."""
    world = traffic.world
    start = time.monotonic() + 0.1
    tasks = []
    batches = int(rate * seconds / BATCH)
    for n in range(batches):
        gateway = world.gateways[traffic.rng.randrange(len(world.gateways))]
        tasks.append(_send(traffic, pool, "events", step, start + n * BATCH / rate, gateway))
    sightings = int(rate * MOBILE_SHARE * seconds)
    for n in range(sightings):
        tasks.append(_send(traffic, pool, "sighting", step, start + (n + 0.5) / (rate * MOBILE_SHARE)))
    for n in range(int(ADMIN_PER_S * seconds)):
        tasks.append(_send(traffic, pool, "admin", step, start + (n + 0.25) / ADMIN_PER_S))
    await asyncio.gather(*tasks)


async def _drive(base: str, traffic: Traffic, scale: Scale) -> list[dict[str, Any]]:
    """The steps in turn until one is overloaded; per step its wall-clock span."""
    from bench.http_load import Pool

    pool = Pool(base, limit=400, timeout_s=TIMEOUT_S)
    spans = []
    try:
        for step, rate in enumerate(scale.steps):
            began = time.time()
            await _step(traffic, pool, step, rate, scale.step_s)
            ended = time.time()
            figures = _step_figures(traffic, step, rate, ended - began)
            spans.append({"step": step, "rate": rate, "began": began, "ended": ended} | figures)
            print(
                f"  {rate:>5} events/s offered: {figures['accepted_per_s']:7.1f} accepted/s, "
                f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, "
                f"503 {figures['overloaded']}, no answer {figures['no_answer']}",
                flush=True,
            )
            if figures["overloaded_step"]:
                break
            await asyncio.sleep(2.0)  # the last answers' work settles before the next step
    finally:
        await pool.close()
    return spans


def _step_figures(traffic: Traffic, step: int, rate: float, span_s: float) -> dict[str, Any]:
    mine = [s for s in traffic.sent if s.step == step]
    batches = [s for s in mine if s.kind in ("events", "sighting")]
    offered = sum(s.offered for s in batches)
    accepted = sum(s.accepted for s in batches)
    answered = [s.seconds for s in mine if s.status in (200, 422)]
    gateway = [s.seconds for s in mine if s.kind == "events" and s.status in (200, 422)]
    admin = [s.seconds for s in mine if s.kind == "admin" and s.status == 200]
    overloaded = sum(1 for s in mine if s.status == 503 and s.code == "overloaded")
    refused = sum(1 for s in mine if s.status == 503)
    no_answer = sum(1 for s in mine if s.status == 0)
    other = sorted({f"{s.status} {s.code[:60]}" for s in mine if s.status not in (0, 200, 422, 503)})
    p99 = percentile(gateway, 99) if gateway else float("inf")
    figures = {
        "requests": len(mine),
        "offered": offered,
        "accepted": accepted,
        "offered_per_s": offered / span_s,
        "accepted_per_s": accepted / span_s,
        "prompts": sum(s.prompts for s in mine),
        "p50_ms": percentile(gateway, 50) * 1000 if gateway else float("nan"),
        "p95_ms": percentile(gateway, 95) * 1000 if gateway else float("nan"),
        "p99_ms": p99 * 1000,
        "admin_p50_ms": percentile(admin, 50) * 1000 if admin else float("nan"),
        "answered_p50_ms": percentile(answered, 50) * 1000 if answered else float("nan"),
        "overloaded": overloaded,
        "refused": refused,
        "no_answer": no_answer,
        "other": other[:5],
        "late_p99_ms": percentile([s.late_s for s in mine], 99) * 1000,
        "span_s": span_s,
    }
    figures["overloaded_step"] = (
        accepted < ACCEPTED_MIN * offered
        or (refused + no_answer) > REFUSED_MAX * len(mine)
        or p99 > P99_MAX_S
    )
    return figures


def _checks(traffic: Traffic, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """From the database: the caps held, every accepted event is stored, refused ones are not; decisions
    a second per step."""
    from sqlalchemy import create_engine, text

    engine = create_engine(traffic.world.url)
    with engine.connect() as connection:
        stored = {
            (int(g), str(k))
            for g, k in connection.execute(
                text("SELECT gateway_id, idempotency_key FROM proximity_events WHERE source = 'gateway'")
            )
        }
        phone_rows = {
            (str(s), str(k))
            for s, k in connection.execute(
                text("SELECT subscriber_id, idempotency_key FROM proximity_events WHERE source = 'phone'")
            )
        }
        per_day = connection.execute(
            text(
                "SELECT coalesce(max(n), 0), count(*) FILTER (WHERE n > :cap) FROM (SELECT count(*) AS n "
                "FROM prompt_decisions WHERE outcome = 'prompted' GROUP BY subscriber_id, local_day) AS d"
            ),
            {"cap": traffic.world.max_per_day},
        ).one()
        per_week = connection.execute(
            text(
                "SELECT coalesce(max(n), 0), count(*) FILTER (WHERE n > :cap) FROM (SELECT count(*) AS n "
                "FROM prompt_decisions WHERE outcome = 'prompted' "
                "GROUP BY subscriber_id, date_trunc('week', local_day)) AS w"
            ),
            {"cap": traffic.world.max_per_week},
        ).one()
        reasons = dict(
            connection.execute(text("SELECT reason, count(*) FROM prompt_decisions GROUP BY reason")).all()
        )
        decided = [
            float(t.timestamp())
            for (t,) in connection.execute(text("SELECT decided_at FROM prompt_decisions"))
        ]
        prompted_people = connection.execute(
            text("SELECT count(DISTINCT subscriber_id) FROM prompt_decisions WHERE outcome = 'prompted'")
        ).scalar_one()
    engine.dispose()
    for span in spans:
        inside = sum(1 for t in decided if span["began"] <= t < span["ended"])
        span["decisions_per_s"] = inside / (span["ended"] - span["began"])
    accepted = traffic.accepted
    return {
        "accepted": len(accepted),
        "lost": len(accepted - stored),
        "duplicates": len(traffic.duplicates),
        "duplicates_not_stored": len(traffic.duplicates - stored),
        "refused": len(traffic.refused),
        "refused_but_stored": len((traffic.refused - accepted) & stored),
        "no_answer": len(traffic.unknown),
        "no_answer_stored": len((traffic.unknown - accepted) & stored),
        "sightings_stored": len(traffic.sightings_stored),
        "sightings_lost": len(traffic.sightings_stored - phone_rows),
        "max_prompts_a_day": int(per_day[0]),
        "over_daily_cap": int(per_day[1]),
        "max_prompts_a_week": int(per_week[0]),
        "over_weekly_cap": int(per_week[1]),
        "prompted_people": int(prompted_people),
        "decisions": len(decided),
        "reasons": {str(k): int(v) for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])},
    }


def _cpu(sampler: CpuSampler, spans: list[dict[str, Any]]) -> None:
    for span in spans:
        samples = sampler.between(span["began"], span["ended"])
        for part in ("workers", "postgres", "generator", "machine"):
            span[f"cpu_{part}"] = statistics.fmean(getattr(s, part) for s in samples) if samples else 0.0
        span["worker_rss_mb"] = max((s.worker_rss_mb for s in samples), default=0.0)


def measure(scale: Scale) -> dict[str, Any]:
    name = create_database("nahbar_load")
    log = Path(tempfile.mkdtemp(prefix="nahbar-load-")) / "server.log"
    load_before = os.getloadavg()[0]
    try:
        from sqlalchemy.engine import make_url

        from bench.policy import POSTGRES_URL
        from server.core.db import make_engine
        from server.core.migrate import upgrade

        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        print(
            f"load: seeding {scale.gateways:,} gateways and {scale.subscribers:,} subscribers ...", flush=True
        )
        world = seed(url, scale.gateways, scale.subscribers, scale.charities, scale.mobile, k=10)
        print(f"  seeded in {world.seed_s:.1f} s; starting {WORKERS} workers ...", flush=True)
        began = time.monotonic()
        with server(url, WORKERS, log) as (base, pid):
            ready_s = time.monotonic() - began
            sampler = CpuSampler(pid, name)
            sampler.start()
            traffic = Traffic(world, random.Random(21))
            try:
                spans = run_loop(_drive(base, traffic, scale))
            finally:
                sampler.stop()
        _cpu(sampler, spans)
        checks = _checks(traffic, spans)
    finally:
        drop_database(name)
    errors = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if "ERROR" in line or "Traceback" in line
    ]
    return {
        "scale": scale.__dict__,
        "seed_s": world.seed_s,
        "ready_s": ready_s,
        "steps": spans,
        "checks": checks,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "server_errors": errors[:10],
        "caps": [world.max_per_day, world.max_per_week],
    }


def _limit(figures: dict[str, Any]) -> str:
    """What stopped the server, from the CPU of the step that overloaded it (or the last step)."""
    steps = figures["steps"]
    last = steps[-1]
    cores = os.cpu_count() or 1
    parts = {
        "the server's workers": last["cpu_workers"],
        "PostgreSQL": last["cpu_postgres"],
        "the load generator": last["cpu_generator"],
    }
    others = max(0.0, last["cpu_machine"] - sum(parts.values()))
    share = ", ".join(f"{name} {used:.2f}" for name, used in parts.items())
    where = (
        f"CPU in cores during the {last['rate']:,} events/s step: {share}, other processes {others:.2f}; "
        f"the machine {last['cpu_machine']:.2f} of {cores}"
    )
    if not last["overloaded_step"]:
        return f"not overloaded by the last step ({where})"
    if last["cpu_machine"] >= 0.85 * cores:
        top = max(parts, key=lambda k: parts[k])
        if others > parts[top]:
            return f"the machine's CPU, most of it taken by other work: try a quiet machine ({where})"
        return f"the machine's CPU, most of it taken by {top} ({where})"
    if last["cpu_postgres"] >= 0.85:
        return f"PostgreSQL, near one core's worth ({where})"
    return f"neither the workers nor PostgreSQL had the CPU to themselves: waits, not work ({where})"


def _table(steps: list[dict[str, Any]]) -> str:
    rows = []
    for s in steps:
        rows.append(
            f"| {s['rate']:,} | {s['offered_per_s']:.0f} | {s['accepted_per_s']:.0f} | "
            f"{s.get('decisions_per_s', 0):.1f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | "
            f"{s['p99_ms']:.0f} | "
            f"{s['overloaded']} | {s['no_answer']} | {s['cpu_workers']:.2f} | {s['cpu_postgres']:.2f} | "
            f"{s['cpu_generator']:.2f} | {s['cpu_machine']:.2f} | "
            f"{'**yes**' if s['overloaded_step'] else 'no'} |"
        )
    return "\n".join(rows)


def _section(f: dict[str, Any], quick: bool) -> str:
    scale, c = f["scale"], f["checks"]
    steps = f["steps"]
    fine = [s for s in steps if not s["overloaded_step"]]
    saturation = (
        f"{fine[-1]['rate']:,} events/s offered was the last step the server kept up with"
        if fine
        else "even the first step overloaded it"
    )
    best = max(s["accepted_per_s"] for s in steps)
    command = "`.venv/bin/python -m bench load" + (" --quick`" if quick else "`")
    other = sorted({o for s in steps for o in s["other"]})
    return f"""
## Load: four workers until overload (issue 20/7)

Run on {report.today()} on {report.machine()}. Command: {command} (`--quick`: a smaller world and shorter
steps, for trying; the full run takes under ten minutes). PostgreSQL at `NAHBAR_BENCH_POSTGRES_URL`; the run
makes a database of its own and drops it after.{QUICK_NOTE if quick else ""}

The world: {scale["gateways"]:,} gateways (one per site, {scale["charities"]} charities, half with a walk-by
campaign decided on the enter, half with a door campaign decided at the 15 s dwell mark),
{scale["subscribers"]:,} opted-in subscribers seeded in bulk (their identity keys sealed as the opt-in seals
them, so the workers'
EID indexes resolve them; {scale["mobile"]:,} of them with device tokens for the iOS path), seeded in
{f["seed_s"]:.0f} s. `nahbar serve --workers {WORKERS}` was ready (every worker's keys loaded) after
{f["ready_s"]:.0f} s.

The traffic, open loop (a request leaves at its time whether or not earlier ones were answered), steps of
{scale["step_s"]:g} s: POST /gateway/v1/events batches of {BATCH} events from random gateways, each event
with the current EID of a person walking past: an enter, a dwell {DWELL_AFTER_S:g} s later, an exit after
that ({REGULAR_SHARE:.0%} of the visits by the 1 % of people who pass often, so the caps are reached);
{RESEND_SHARE:.0%} of the answered batches sent again (every event a duplicate); iOS sightings on POST
/mobile/v1/sightings at {MOBILE_SHARE:.0%} of the event rate; {ADMIN_PER_S:g} admin reads a second (decisions,
sites, the impact funnel). Latency is from sending a gateway batch to its answer (the lean client of
`bench/http_load.py`). A step counts as overloaded when fewer than {ACCEPTED_MIN:.0%} of the events offered
were accepted, more than {REFUSED_MAX:.0%} of the requests were refused or unanswered, or p99 passed
{P99_MAX_S:g} s; the run stops after it. CPU in cores (1.00: one core busy), sampled each second with psutil:
the workers, PostgreSQL (this database's backends and the server's own processes), the load generator, and
the whole machine.

| offered events/s | offered (measured) | accepted/s | decisions/s | p50 ms | p95 ms | p99 ms \
| 503 overloaded | no answer | CPU workers | CPU PostgreSQL | CPU generator | CPU machine | overloaded |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{_table(steps)}

**Saturation: {saturation}; the most accepted in a step was {best:.0f} events/s. What limits it:
{_limit(f)}.**

Checks, from the database after the run:

| | |
| --- | ---: |
| events answered as accepted | {c["accepted"]:,} |
| **of them not in proximity_events (lost)** | **{c["lost"]:,}** |
| answered as duplicates / of them not stored | {c["duplicates"]:,} / {c["duplicates_not_stored"]:,} |
| in batches refused with 503 / stored all the same | {c["refused"]:,} / {c["refused_but_stored"]:,} |
| in requests without an answer (client timeout {TIMEOUT_S:g} s) / stored | {c["no_answer"]:,} / \
{c["no_answer_stored"]:,} |
| iOS sightings answered as stored / not in proximity_events | {c["sightings_stored"]:,} / \
{c["sightings_lost"]:,} |
| decisions / people prompted | {c["decisions"]:,} / {c["prompted_people"]:,} |
| **most prompts to one person in a day** (cap {f["caps"][0]}) / people over it | \
**{c["max_prompts_a_day"]}** / {c["over_daily_cap"]} |
| **most prompts to one person in a week** (cap {f["caps"][1]}) / people over it | \
**{c["max_prompts_a_week"]}** / {c["over_weekly_cap"]} |

Decisions by reason: {", ".join(f"{k} {v:,}" for k, v in c["reasons"].items())}.
{f"Other answers: {'; '.join(other)}." if other else ""}
Load average (one minute) before and after: {f["load_before"]:.1f} and {f["load_after"]:.1f} on
{os.cpu_count()} cores. The load generator shares the machine with the server and PostgreSQL, so on a small
machine part of what limits the server is its own client: its CPU is in the table.
"""


def run(quick: bool = False) -> bool:
    """Measure, print, write the section; True when nothing was lost and no cap was broken."""
    scale = QUICK if quick else FULL
    print(
        f"load: {WORKERS} workers on PostgreSQL, steps {', '.join(map(str, scale.steps))} events/s",
        flush=True,
    )
    figures = measure(scale)
    c = figures["checks"]
    ok = (
        c["lost"] == 0 and c["over_daily_cap"] == 0 and c["over_weekly_cap"] == 0 and c["sightings_lost"] == 0
    )
    ok = ok and c["duplicates_not_stored"] == 0 and c["refused_but_stored"] == 0
    print(
        f"  lost {c['lost']}, over the daily cap {c['over_daily_cap']}, over the weekly cap "
        f"{c['over_weekly_cap']}; limit: {_limit(figures)}",
        flush=True,
    )
    for line in figures["server_errors"]:
        print(f"  server: {line}", flush=True)
    report.write_section("load", _section(figures, quick))
    print(f"wrote the load section of {report.DOC.relative_to(report.DOC.parent.parent)}")
    return ok


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))  # through the cleanups
    parser = argparse.ArgumentParser(prog="python -m bench load")
    parser.add_argument("--quick", action="store_true", help="a smaller world and shorter steps (1-2 min)")
    args = parser.parse_args(argv)
    return 0 if run(args.quick) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
