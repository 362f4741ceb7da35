"""The outbox on a real SQLite file: order, idempotence, bounds, set-aside, counters, permissions, kill -9."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from beacon_agent.models import PresenceEvent
from beacon_agent.outbox import Outbox, OutboxStats

T0 = datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC)


def event(n: int, **changes: object) -> PresenceEvent:
    base = PresenceEvent(f"evt-{n:06d}", "enter", f"{n:016x}", T0 + timedelta(seconds=n), -61.5, 1.75)
    return replace(base, **changes)


def ids(events: list[PresenceEvent]) -> list[str]:
    return [e.id for e in events]


@pytest.fixture
def box(tmp_path: Path):
    with Outbox(tmp_path / "state" / "outbox.db") as outbox:
        yield outbox


def test_put_peek_ack_keep_order_and_round_trip_every_field(box: Outbox):
    berlin = timezone(timedelta(hours=1))
    odd = event(3, kind="exit", rssi=None, distance_m=None, dwell_s=42.5)
    odd = replace(odd, observed_at=datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=berlin))
    box.put([event(1), event(2)])
    box.put([odd, event(4)])

    assert box.peek(10) == [event(1), event(2), odd, event(4)]
    assert box.peek(10)[2].observed_at.utcoffset() == timedelta(hours=1)
    assert ids(box.peek(2)) == ["evt-000001", "evt-000002"]
    box.ack(["evt-000002", "evt-000001", "evt-unknown"])
    assert ids(box.peek(10)) == ["evt-000003", "evt-000004"]
    box.put([event(5)])
    assert ids(box.peek(10)) == ["evt-000003", "evt-000004", "evt-000005"]
    assert box.depth() == 3
    assert box.stats() == OutboxStats(depth=3, stored=5, acked=2, dropped_full=0, set_aside=0)


def test_putting_an_id_again_does_not_duplicate_it(box: Outbox):
    box.put([event(1), event(2), event(1)])
    box.put([event(2, dwell_s=9.0), event(3)])
    assert box.peek(10) == [event(1), event(2), event(3)]
    assert box.stats().stored == 3


def test_a_full_outbox_drops_the_oldest_and_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with Outbox(tmp_path / "outbox.db", max_events=5) as box:
        box.put([event(n) for n in range(1, 5)])
        with caplog.at_level(logging.WARNING, logger="beacon_agent.outbox"):
            box.put([event(n) for n in range(5, 9)])
        assert ids(box.peek(10)) == [f"evt-{n:06d}" for n in range(4, 9)]
        assert box.stats().dropped_full == 3
        assert "dropped the 3 oldest" in caplog.text


def test_set_aside_moves_events_out_of_the_queue_for_good(tmp_path: Path):
    with Outbox(tmp_path / "outbox.db", clock=lambda: T0) as box:
        box.put([event(1), event(2), event(3)])
        box.set_aside({"evt-000002": "events[1].rssi: too loud", "evt-gone": "not queued"})

        assert ids(box.peek(10)) == ["evt-000001", "evt-000003"]
        [aside] = box.set_aside_events()
        assert (aside.event, aside.reason, aside.set_aside_at) == (event(2), "events[1].rssi: too loud", T0)
        box.put([event(2)])  # the tracker cannot bring a refused event back into the queue
        assert ids(box.peek(10)) == ["evt-000001", "evt-000003"]
        assert box.stats().set_aside == 1


def test_counters_survive_a_reopen(tmp_path: Path):
    path = tmp_path / "outbox.db"
    with Outbox(path, max_events=3) as box:
        box.put([event(n) for n in range(1, 6)])
        box.ack(["evt-000003"])
        box.set_aside({"evt-000004": "HTTP 404: not found"})
        before = box.stats()
    assert before == OutboxStats(depth=1, stored=5, acked=1, dropped_full=2, set_aside=1)
    with Outbox(path, max_events=3) as box:
        assert box.stats() == before
        assert ids(box.peek(10)) == ["evt-000005"]


def test_the_database_keeps_only_the_event_fields(box: Outbox):
    box.put([event(1)])
    with sqlite3.connect(box.path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
    assert columns == ["seq", "id", "kind", "eid", "observed_at", "rssi", "distance_m", "dwell_s"]


def test_files_are_private_even_under_a_loose_umask_or_an_old_file(tmp_path: Path):
    old = os.umask(0o000)
    try:
        loose = tmp_path / "loose.db"
        loose.touch(mode=0o644)
        for path in (tmp_path / "fresh" / "outbox.db", loose):
            with Outbox(path) as box:
                box.put([event(1)])
                files = [path, *path.parent.glob(path.name + "-*")]
                assert {p.name.removeprefix(path.name) for p in files} == {"", "-wal", "-shm"}
                assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
        assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
    finally:
        os.umask(old)


_PRODUCER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from beacon_agent.models import PresenceEvent
from beacon_agent.outbox import Outbox

box = Outbox(Path(sys.argv[1]))
now = datetime.now(UTC)
for batch in range(100_000):
    box.put([PresenceEvent(f"evt-{batch:05d}-{i:02d}", "dwell", "00112233aabbccdd", now) for i in range(25)])
    print(batch, flush=True)
"""


@pytest.mark.slow
def test_every_committed_batch_survives_kill_9(tmp_path: Path):
    path = tmp_path / "outbox.db"
    with subprocess.Popen(
        [sys.executable, "-c", _PRODUCER, str(path)], stdout=subprocess.PIPE, text=True
    ) as producer:
        assert producer.stdout is not None
        reported = [int(producer.stdout.readline()) for _ in range(40)]
        producer.send_signal(signal.SIGKILL)
        producer.wait(10)
        # Lines printed between our last read and the kill were committed too.
        reported += [int(line) for line in producer.stdout.read().split()]
    assert producer.returncode == -signal.SIGKILL

    with Outbox(path) as box:
        stored = ids(box.peek(10_000_000))
    assert len(stored) == len(set(stored)), "an event was stored twice"
    batches: dict[int, int] = {}
    for key in stored:
        batch = int(key.split("-")[1])
        batches[batch] = batches.get(batch, 0) + 1
    assert set(reported) <= set(batches), "a batch reported committed is missing"
    assert set(batches.values()) == {25}, "a batch was committed in part"
    assert max(batches) <= max(reported) + 1
