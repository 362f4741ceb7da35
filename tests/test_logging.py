"""Structured logs: one JSON object per line with the extra fields."""

from __future__ import annotations

import json
import logging

from server.core.logging import ConsoleFormatter, JsonFormatter, SchedulerRunsAtDebug


def test_json_lines_carry_extra_fields():
    record = logging.makeLogRecord(
        {"name": "nahbar.x", "levelname": "INFO", "msg": "decision %s", "args": ("ok",)}
    )
    record.site = "Hospiz"
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "decision ok"
    assert line["site"] == "Hospiz"
    assert line["level"] == "info"
    assert "site=Hospiz" in ConsoleFormatter().format(record)


def test_uvicorns_colour_copy_of_the_message_stays_out_and_the_process_is_named():
    record = logging.makeLogRecord({"name": "uvicorn.error", "levelname": "INFO", "msg": "Started"})
    record.color_message = "\x1b[36mStarted\x1b[0m"
    line = json.loads(JsonFormatter().format(record))
    assert "color_message" not in line
    assert line["pid"] == record.process
    assert "color_message" not in ConsoleFormatter().format(record)


def test_scheduler_runs_are_debug_lines():
    runs = SchedulerRunsAtDebug()
    logger = logging.getLogger("apscheduler.executors.default")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "Running job %s", ("x",), None)
    level = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert runs.filter(record) is False  # demoted below the level: dropped
        assert (record.levelno, record.levelname) == (logging.DEBUG, "DEBUG")
        logger.setLevel(logging.DEBUG)
        again = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "Running job %s", ("x",), None)
        assert runs.filter(again) is True
        assert again.levelname == "DEBUG"
        warning = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "missed", (), None)
        assert runs.filter(warning) is True
        assert warning.levelname == "WARNING"
    finally:
        logger.setLevel(level)
