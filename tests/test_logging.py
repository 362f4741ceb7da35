"""Structured logs: one JSON object per line with the extra fields."""

from __future__ import annotations

import json
import logging

from server.core.logging import ConsoleFormatter, JsonFormatter


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
