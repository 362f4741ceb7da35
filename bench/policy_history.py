"""Live decisions with a long history: 100,000 subscribers with one day of decisions stored, and the same with
30 days (3 million decisions), measured in interleaved rounds on PostgreSQL. Prints JSON figures.

The history is what a platform accumulates: one decision a day per person (every eighth a prompt, so about
four a month, the default monthly cap), a third of the prompts dismissed, and each person's compact history
(`person_history`) as the live path would have written it. `python -m bench.policy_history` runs both worlds
(about ten minutes, most of it filling 3 million decisions); for an A/B against another commit,
`keep` builds the worlds and prints their database names, `measure NAME` measures a fresh copy of one
from whatever code is on the path (run it from a checkout of the other commit with this file copied in),
`drop NAME` drops one.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.policy import (
    POSTGRES_URL,
    World,
    analyze,
    create_database,
    drop_database,
    latency,
    make_world,
    throughput,
)

PEOPLE: Final = int(os.environ.get("NAHBAR_BENCH_HISTORY_PEOPLE", "100000"))  # fewer for a quick try
SHORT_DAYS: Final = 1
LONG_DAYS: Final = 30
ROUNDS: Final = 3  # of both worlds, alternating, each on a fresh copy: the machine's speed drifts
PROMPT_EVERY: Final = 8  # days: about four prompts in 30 days


def fill_history(url: str, days: int) -> dict[str, Any]:
    """`days` days of decisions before today for every subscriber, their answers, and their histories."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    began = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL TimeZone = 'UTC'"))
        pairs = connection.execute(
            text("SELECT site_id, campaign_id FROM campaign_sites ORDER BY site_id, campaign_id")
        ).all()
        connection.execute(
            text(
                "INSERT INTO prompt_decisions (subscriber_id, site_id, campaign_id, outcome, reason,"
                " decided_at, local_day, day_slot)"
                " SELECT s.id, (:sites)[1 + (s.n + d) % :k], (:campaigns)[1 + (s.n + d) % :k],"
                " CASE WHEN (s.n + d) % :every = 0 THEN 'prompted' ELSE 'suppressed' END,"
                " CASE WHEN (s.n + d) % :every = 0 THEN 'prompted' ELSE 'global_weekly_cap' END,"
                " now() - d * interval '1 day' - (s.n % 3600) * interval '1 second',"
                " CASE WHEN (s.n + d) % :every = 0 THEN (now() - d * interval '1 day')::date END,"
                " CASE WHEN (s.n + d) % :every = 0 THEN 0 END"
                " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM subscribers) AS s,"
                " generate_series(1, :days) AS d"
            ),
            {
                "sites": [site for site, _ in pairs],
                "campaigns": [campaign for _, campaign in pairs],
                "k": len(pairs),
                "every": PROMPT_EVERY,
                "days": days,
            },
        )
        connection.execute(
            text(
                "INSERT INTO prompt_responses (decision_id, kind, at)"
                " SELECT id, CASE WHEN id % 3 = 0 THEN 'dismissed' ELSE 'opened' END,"
                " decided_at + interval '1 minute' FROM prompt_decisions WHERE outcome = 'prompted'"
            )
        )
        decisions = connection.execute(text("SELECT count(*) FROM prompt_decisions")).scalar_one()
        kept = connection.execute(text("SELECT to_regclass('person_history') IS NOT NULL")).scalar_one()
        if kept:
            connection.execute(text(_HISTORIES))
    analyze(engine)
    engine.dispose()
    return {"days": days, "decisions": decisions, "fill_s": time.perf_counter() - began}


# Each person's history as the live path keeps it (server/policy/history.py): prompts oldest first as
# [decided at, local day, charity, campaign], the latest dismissal per campaign (all within 30 days here).
_HISTORIES = """
INSERT INTO person_history (subscriber_id, prompts, dismissed, accepted, updated_at)
SELECT p.subscriber_id, p.prompts, coalesce(a.dismissed, '{}'), '{}', now()
FROM (
    SELECT d.subscriber_id,
           json_agg(json_build_array(d.decided_at, d.local_day, c.organisation_id, d.campaign_id)
                    ORDER BY d.decided_at) AS prompts
    FROM prompt_decisions AS d JOIN campaigns AS c ON c.id = d.campaign_id
    WHERE d.outcome = 'prompted'
    GROUP BY d.subscriber_id
) AS p
LEFT JOIN (
    SELECT subscriber_id, json_object_agg(campaign_id, at) AS dismissed
    FROM (
        SELECT d.subscriber_id, d.campaign_id, max(r.at) AS at
        FROM prompt_responses AS r JOIN prompt_decisions AS d ON d.id = r.decision_id
        WHERE r.kind = 'dismissed'
        GROUP BY d.subscriber_id, d.campaign_id
    ) AS latest
    GROUP BY subscriber_id
) AS a USING (subscriber_id)
"""


def build(days: int) -> tuple[World, dict[str, Any]]:
    name = create_database("nahbar_bench_history")
    world = make_world(name, PEOPLE)
    return world, fill_history(world.url, days)


def world_of(name: str) -> World:
    """A world kept by `keep`, read back from its database."""
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.connect() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM subscribers ORDER BY id"))]
        sites = connection.execute(text("SELECT id, timezone FROM sites ORDER BY id")).all()
    engine.dispose()
    return World(url, ids, [site for site, _ in sites], sites[0][1])


def measure(world: World) -> dict[str, Any]:
    """One round: requests of 1 and of 10 sightings (closed loop), then the open loop at 500 a second."""
    return {
        "throughput": throughput(world, 1),
        "throughput_10": throughput(world, 10),
        "latency_500": latency(world, 500.0),
    }


def measure_copy(database: str) -> dict[str, Any]:
    """One round on a fresh copy of a world's database. Every round starts from the same state: a round
    leaves its visits decided, its idempotency keys and today's prompts behind, and on the same database the
    next round's sightings would mostly continue visits already decided, counting as no decisions at all."""
    copy = create_database("nahbar_bench_copy", template=database)
    try:
        return measure(world_of(copy))
    finally:
        drop_database(copy)


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, with every round's figure beside them (the spread)."""

    def pick(part: str, key: str) -> list[float]:
        return [r[part][key] for r in rounds]

    return {
        "decisions_per_s": statistics.median(pick("throughput", "decisions_per_s")),
        "decisions_per_s_10": statistics.median(pick("throughput_10", "decisions_per_s")),
        "p99_ms": statistics.median(pick("latency_500", "p99_ms")),
        "rounds": {
            "decisions_per_s": pick("throughput", "decisions_per_s"),
            "decisions_per_s_10": pick("throughput_10", "decisions_per_s"),
            "p99_ms": pick("latency_500", "p99_ms"),
        },
    }


@contextmanager
def worlds() -> Iterator[dict[int, tuple[World, dict[str, Any]]]]:
    made: dict[int, tuple[World, dict[str, Any]]] = {}
    try:
        for days in (SHORT_DAYS, LONG_DAYS):
            made[days] = build(days)
        yield made
    finally:
        for world, _ in made.values():
            drop_database(make_url(world.url).database or "")


def figures() -> dict[str, Any]:
    with worlds() as made:
        rounds: dict[int, list[dict[str, Any]]] = {days: [] for days in made}
        for _ in range(ROUNDS):
            for days, (world, _) in made.items():
                rounds[days].append(measure_copy(make_url(world.url).database or ""))
        result: dict[str, Any] = {"people": PEOPLE}
        for days, (_, filled) in made.items():
            result[f"days_{days}"] = {**filled, **summary(rounds[days])}
    short, long = result[f"days_{SHORT_DAYS}"], result[f"days_{LONG_DAYS}"]
    result["ratio"] = long["decisions_per_s"] / short["decisions_per_s"]
    result["ratio_10"] = long["decisions_per_s_10"] / short["decisions_per_s_10"]
    return result


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "run"
    if command == "keep":
        print(json.dumps({days: make_url(build(days)[0].url).database for days in (SHORT_DAYS, LONG_DAYS)}))
    elif command == "measure":
        print(json.dumps(measure_copy(argv[1])))
    elif command == "drop":
        drop_database(argv[1])
    else:
        print(json.dumps(figures()))


if __name__ == "__main__":
    main(sys.argv[1:])


def history_section(f: dict[str, Any]) -> str:
    """The long-history part of the policy section of docs/benchmarks.md."""
    short, long = f[f"days_{SHORT_DAYS}"], f[f"days_{LONG_DAYS}"]

    def spread(world: dict[str, Any], key: str, unit: str = "") -> str:
        return ", ".join(f"{x:,.0f}{unit}" if not unit else f"{x:.1f}{unit}" for x in world["rounds"][key])

    rows = "\n".join(
        f"| {w['days']} day{'s' if w['days'] > 1 else ''} ({w['decisions']:,} decisions stored) | "
        f"{w['decisions_per_s']:,.0f} ({spread(w, 'decisions_per_s')}) | "
        f"{w['decisions_per_s_10']:,.0f} ({spread(w, 'decisions_per_s_10')}) | "
        f"{w['p99_ms']:.1f} ms ({spread(w, 'p99_ms', ' ms')}) |"
        for w in (short, long)
    )
    return f"""### Long history

`python -m bench.policy_history`: {f["people"]:,} subscribers, once with {SHORT_DAYS} day of decisions stored
before today and once with {LONG_DAYS} days (one decision a day per person, every {PROMPT_EVERY}th a prompt,
a third of the prompts dismissed, and each person's compact history as the live path keeps it); the same
measurements as above, {ROUNDS} rounds alternating between the two worlds, each on a fresh copy of its
database, medians with each round's figure.
Filling took {short["fill_s"]:.0f} s and {long["fill_s"]:.0f} s. With the retention purge, a platform keeps
14 days of raw decisions by default (`NAHBAR_RETENTION_DAYS`), not {LONG_DAYS}: the long world is the
harder case.

| history | decisions/s, requests of 1 | requests of 10 | p99 at 500/s |
| --- | ---: | ---: | ---: |
{rows}

**30 days against 1 day: {f["ratio"]:.2f}x** with requests of 1, {f["ratio_10"]:.2f}x with requests of 10.
{HISTORY_NOTES}"""


HISTORY_NOTES: Final = """
What changed for this (issue "costs that grow with time and crowds"): the live path read each person's
whole past from `prompt_decisions` and `prompt_responses`, which nothing purged. It now reads one
`person_history` row per person (the last 30 days' prompts, each campaign's latest, dismissals and
acceptances; server/policy/history.py), written in the batch's own write pipeline, and the retention purge
deletes raw decisions with the other raw rows. On PostgreSQL each person's row and exclusions are looked up
on their own (a nested loop over the batch's ids) and a campaign's daily budget is counted per campaign and
day through its index; tests/test_history_plans.py holds the plans to index lookups for 1 and 100 people.

PostgreSQL settings: the benchmark sets, for its own databases only (`ALTER DATABASE ... SET`), `jit = off`,
`random_page_cost = 1.1`, `effective_io_concurrency = 200`, `effective_cache_size = 8GB`, `work_mem = 16MB`;
`shared_buffers` is the server's (it cannot be set per database). Which of them matter for the live path,
and why, is in docs/deployment.md (PostgreSQL).
"""
