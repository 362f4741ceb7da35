"""How long until every worker's EID index resolves a new subscriber: 4 workers on PostgreSQL, LISTEN/NOTIFY.

`python -m bench opt-in` (PostgreSQL at NAHBAR_BENCH_POSTGRES_URL, by default the tests' server) makes a
database of its own, migrates it, and starts WORKERS processes, each building the server's `Runtime` and
starting its opt-in listener as the app's lifespan does, with no scheduler (so no periodic look). This process
then opts subscribers in one at a time through the same service and notice as `POST /mobile/v1/optin`; each
worker polls its own index for the new phone's current EID (every POLL_S) and reports when it resolves.
Measured from just before the opt-in's COMMIT, so the commit itself is included.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any, Final

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import report
from bench.serving import SECRET

WORKERS: Final = 4
ROUNDS: Final = 30
POLL_S: Final = 0.0005
PAUSE_S: Final = 0.2  # between opt-ins
TARGET_S: Final = 2.0  # "a few seconds" at most; the periodic look alone bounds it at 10 s
POSTGRES_URL: Final = os.environ.get(
    "NAHBAR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _settings(url: str) -> Any:
    from server.core.config import Settings

    return Settings(environment="test", database_url=url, secret_key=SECRET, scheduler_enabled=False)


def _worker(url: str, pipe: Connection) -> None:
    """One worker: its own runtime and listener; resolves what it is told to watch, says when."""
    from mobile_api.eid import eid
    from server.runtime import Runtime

    runtime = Runtime.build(_settings(url))
    listener = runtime.opt_in_notices
    assert listener is not None
    listener.start()
    listener.listening.wait(30)
    pipe.send("ready")
    while True:
        job = pipe.recv()
        if job is None:
            break
        identity_key, k = job
        pipe.send("watching")
        while True:
            now = time.time()
            if runtime.eid_index.resolve(eid(identity_key, int(now), k)) is not None:
                pipe.send(time.time())
                break
            time.sleep(POLL_S)
    listener.stop()
    runtime.close()


def _database() -> tuple[str, str]:
    name = f"nahbar_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _drop(name: str) -> None:
    admin = create_engine(
        make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def measure() -> dict[str, Any]:
    """Per opt-in, the seconds until each worker resolved it (from just before the commit)."""
    import server.models  # noqa: F401 - every table
    from server.core.db import make_engine, make_sessionmaker
    from server.core.migrate import upgrade
    from server.core.security import KeySealer
    from server.presence.opt_in_notices import announce_opt_in
    from server.subscribers import service as subscribers

    name, url = _database()
    context = mp.get_context("spawn")  # as uvicorn starts its workers
    pipes: list[Connection] = []
    processes = []
    try:
        engine = make_engine(url)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        for _ in range(WORKERS):
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(url, theirs), daemon=True)
            process.start()
            pipes.append(ours)
            processes.append(process)
        assert all(pipe.recv() == "ready" for pipe in pipes)
        sealer = KeySealer(SECRET)
        rounds = []
        for _ in range(ROUNDS):
            with sessions() as session:
                opted = subscribers.opt_in(
                    session,
                    sealer,
                    scopes=["volunteer"],
                    language="de",
                    consent_version="2026-11",
                    rotation_exponent=10,
                    now=_now(),
                )
                announce_opt_in(session, opted.keyed.subscriber_id)
                for pipe in pipes:
                    pipe.send((opted.keyed.identity_key, opted.keyed.k))
                assert all(pipe.recv() == "watching" for pipe in pipes)
                before = time.time()
                session.commit()
                committed = time.time()
            resolved = [pipe.recv() - before for pipe in pipes]
            rounds.append({"commit_s": committed - before, "workers_s": resolved})
            time.sleep(PAUSE_S)
        for pipe in pipes:
            pipe.send(None)
        for process in processes:
            process.join(30)
        engine.dispose()
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        _drop(name)
    return {"rounds": rounds, "load_average": os.getloadavg()[0]}


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def run() -> bool:
    """Measure, print, write the section; True when the slowest worker of every opt-in met the target."""
    print(f"opt-in: propagation to {WORKERS} workers over LISTEN/NOTIFY ({ROUNDS} opt-ins) ...", flush=True)
    figures = measure()
    everyone = [max(r["workers_s"]) for r in figures["rounds"]]  # until the last worker resolved it
    each = [s for r in figures["rounds"] for s in r["workers_s"]]
    commits = [r["commit_s"] for r in figures["rounds"]]
    quantiles = statistics.quantiles(everyone, n=20)
    each_p95 = statistics.quantiles(each, n=20)[18]
    met = max(everyone) <= TARGET_S
    summary = [
        f"every worker resolves it after: median {_ms(statistics.median(everyone))}, "
        f"p95 {_ms(quantiles[18])}, max {_ms(max(everyone))} "
        f"(target {TARGET_S:g} s: {'met' if met else 'MISSED'})",
        f"one worker: median {_ms(statistics.median(each))}; the commit itself: median "
        f"{_ms(statistics.median(commits))}",
    ]
    print("\n".join("  " + line for line in summary))
    section = f"""
## Opt-in propagation to every worker (issue 7/7)

Run on {report.today()} on {report.machine()}. Command: `.venv/bin/python -m bench opt-in` (PostgreSQL at
`NAHBAR_BENCH_POSTGRES_URL`, default `postgresql://postgres@127.0.0.1:5432/test`; it makes and drops a
database of its own).

{WORKERS} worker processes (started with `spawn`, as uvicorn starts its workers), each with the server's
`Runtime` and its opt-in listener (`server/presence/opt_in_notices.py`: LISTEN on a connection of its own, a
thread that reads the new subscriber's key by id and adds it to the index), no scheduler, so no periodic
look and no gateway asking. {ROUNDS} opt-ins, {PAUSE_S:g} s apart, each through `subscribers.opt_in` and the
same `pg_notify` the endpoint sends; every worker polls its own index for the new phone's current EID every
{POLL_S * 1000:g} ms. Times from just before the opt-in's COMMIT (the commit included) until the worker
resolved the EID.

| | median | p95 | max |
| --- | ---: | ---: | ---: |
| **until every worker resolves the new phone** | **{_ms(statistics.median(everyone))}** | \
**{_ms(quantiles[18])}** | **{_ms(max(everyone))}** |
| one worker | {_ms(statistics.median(each))} | {_ms(each_p95)} | {_ms(max(each))} |
| the COMMIT itself | {_ms(statistics.median(commits))} | | {_ms(max(commits))} |

Target: at most {TARGET_S:g} s ({"met" if met else "MISSED"}). Without notices (SQLite, or while a listener
reconnects) the periodic look bounds it at 10 s (`eid-opt-in-sync`), and a gateway batch with an EID this
worker does not know makes it look at once, before the event is dropped. Load average (one minute) after the
run: {figures["load_average"]:.1f} on {os.cpu_count()} cores; the poll loops of four processes share them.
"""
    report.write_section("opt-in", section)
    return met


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
