"""`nahbar serve --workers 2` logs like one process: every line JSON, the workers' INFO lines included,
without APScheduler's line per job run and without uvicorn's colour codes."""

from __future__ import annotations

import httpx
import pytest

from tests.served import Served, records, sqlite_copy


def _workers_reported(output: str, parent: int, event: str) -> set[int]:
    lines = [line for line in output.splitlines() if event in line]
    return {r["pid"] for r in records("\n".join(lines)) if r["pid"] != parent and r["level"] == "info"}


@pytest.mark.slow
def test_every_worker_logs_json_at_info_without_job_run_chatter_or_colours(tmp_path, sqlite_template):
    with Served(tmp_path, sqlite_copy(sqlite_template, tmp_path), workers=2) as server:
        assert server.process is not None
        parent = server.process.pid
        # Each worker loads the EID index; the one that leads the scheduler runs the retention job at start.
        server.wait_for(lambda out: len(_workers_reported(out, parent, "EID index loaded")) == 2)
        server.wait_for(lambda out: len(_workers_reported(out, parent, "retention:")) == 1)
        with httpx.Client(base_url=server.url) as client:
            for _ in range(10):
                assert client.get("/healthz").status_code == 200
                assert client.get("/p/" + "x" * 43).status_code == 404
        output = server.stop()

    lines = records(output)  # every line is a JSON object
    workers = {r["pid"] for r in lines if r["pid"] != parent}
    assert len(workers) == 2, output
    for worker in workers:
        events = {r["event"] for r in lines if r["pid"] == worker and r["level"] == "info"}
        assert "EID index loaded" in events
    # Leader-only jobs ran in one worker: the leader, which said so.
    leaders = _workers_reported(output, parent, "now the scheduler leader")
    assert len(leaders) == 1, output
    assert _workers_reported(output, parent, "retention:") == leaders
    access = [r for r in lines if r["logger"] == "nahbar.access"]
    assert len(access) >= 20, output  # the readiness probes come on top
    assert {r["pid"] for r in access} <= workers
    # APScheduler's "Running job ..." and "Job ... executed successfully" come with every run: DEBUG only.
    assert not [r for r in lines if r["logger"].startswith("apscheduler.executors")], output
    assert "Running job" not in output
    assert "\x1b" not in output  # no ANSI colour codes, raw
    assert "\\u001b" not in output  # or escaped in JSON
    assert not [r for r in lines if "color_message" in r]
