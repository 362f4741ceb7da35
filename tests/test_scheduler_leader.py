"""One leader runs the leader-only jobs: processes that all run the scheduler take turns, never at once, and
another takes over when the leader is killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server.core.leader import AdvisoryLeadership, FileLeadership, leadership_for, lock_file_of
from tests.processes import Background, clean_env

ROOT = Path(__file__).resolve().parent.parent


def _runs(path: Path) -> list[tuple[int, float, float | None]]:
    """(pid, start, end or None) of every run written down so far, in the order they started."""
    started: dict[int, float] = {}
    runs: list[tuple[int, float, float | None]] = []
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        what, pid, at = line.split()
        if what == "start":
            started[int(pid)] = float(at)
        else:
            runs.append((int(pid), started.pop(int(pid)), float(at)))
    runs += [(pid, at, None) for pid, at in started.items()]
    return sorted(runs, key=lambda run: run[1])


def _until(condition, what: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _scheduler(url: str, runs: Path, folder: Path, name: str) -> Background:
    """tests/scheduler_process.py in a process of its own, run by the virtualenv's python."""
    argv = ["python", "-m", "tests.scheduler_process", url, str(runs)]
    return Background(argv, env=clean_env(), cwd=ROOT, log=folder / f"{name}.log")


@pytest.mark.slow
def test_only_the_leader_runs_the_job_and_another_takes_over_when_it_is_killed(database_url, tmp_path):
    runs = tmp_path / "runs.txt"
    with _scheduler(database_url, runs, tmp_path, "first") as first:
        first.wait_for_output("scheduler started")
        _until(lambda: len(_runs(runs)) >= 2, "the first process never ran the job")
        with _scheduler(database_url, runs, tmp_path, "second") as second:
            second.wait_for_output("scheduler started")
            before = len(_runs(runs))
            _until(lambda: len(_runs(runs)) >= before + 5, "the leader stopped running the job")
            assert {pid for pid, _, _ in _runs(runs)} == {first.process.pid}, "only the leader ran it"

            kill_sent = time.time()  # a run that starts before this overlapped the one the kill cut short
            os.killpg(first.process.pid, signal.SIGKILL)  # no shutdown, no release: the lock dies with it
            first.process.wait(10)
            killed_at = time.time()  # the first process is gone: every run that starts later is the second's
            _until(
                lambda: sum(pid == second.process.pid for pid, _, _ in _runs(runs)) >= 3,
                f"nobody took over:\n{second.output()}",
            )
            assert second.stop() == 0

    done = _runs(runs)
    assert {pid for pid, _, _ in done} == {first.process.pid, second.process.pid}
    # No two runs at once: each starts after the one before it ended (a run the kill cut short ended then).
    for (_, _, end), (pid, start, _) in zip(done, done[1:], strict=False):
        assert start >= (end if end is not None else kill_sent), f"run of {pid} overlapped: {done}"
    assert all(pid == second.process.pid for pid, start, _ in done if start > killed_at)


def test_the_sqlite_lock_is_a_file_beside_the_database_that_one_holder_keeps(tmp_path):
    url = f"sqlite:///{tmp_path / 'nahbar.db'}"
    first, second = leadership_for(url), leadership_for(url)
    assert isinstance(first, FileLeadership)
    assert first.path == lock_file_of(str(tmp_path / "nahbar.db"))
    assert first.held()
    assert not second.held(), "a second holder in the same process is refused too"
    assert first.held(), "the holder keeps it"
    first.close()
    assert second.held(), "once given up, the next one takes it"
    second.close()


@pytest.mark.postgres
def test_a_leader_whose_connection_breaks_stops_leading_and_another_takes_over(postgres_url):
    first, second = leadership_for(postgres_url), leadership_for(postgres_url)
    assert isinstance(first, AdvisoryLeadership)
    try:
        assert first.held()
        assert not second.held()
        # The server ends the leader's session (a restart, a network cut noticed by keepalives, an admin).
        admin = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
        with admin.begin() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).all()
        admin.dispose()
        assert ended == [(True,)]
        _until(second.held, "the lock was never released", within_s=10)
        assert not first.held(), "the old leader noticed, and does not lead"
        assert not first.held(), "nor after connecting again"
    finally:
        first.close()
        second.close()
