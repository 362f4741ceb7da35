"""Structured logging: one JSON object per line in production, key=value for people in development.

`logging_config` is a dictConfig that `nahbar serve` hands to uvicorn, which applies it in its own process
and again in every worker it starts (`--workers`): each process logs the same way.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

# uvicorn's `color_message` repeats the message with ANSI colour codes for its own console formatter.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

# Loggers of libraries that put request URLs and headers in their lines: a push service's URL holds the
# subscription (an APNs device token, a Web Push endpoint), headers hold credentials. Warnings only.
_QUIET_LIBRARIES: Final = ("httpx", "hpack", "h2")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, with `nahbar serve --workers N`
            "event": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class SchedulerRunsAtDebug(logging.Filter):
    """APScheduler says "Running job" and "executed successfully" at INFO for every run of every job (one a
    second per worker, most of all lines): those are DEBUG here; its warnings and errors stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def logging_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The dictConfig for `NAHBAR_LOG_LEVEL` and `NAHBAR_LOG_FORMAT`: every line through one root handler."""
    formatter = JsonFormatter if fmt == "json" else ConsoleFormatter
    loggers: dict[str, Any] = {
        # uvicorn's loggers keep no handlers of their own: their lines go through the root's formatter.
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
        # The access log is written by server/api/accesslog.py, without client addresses or secret paths.
        "uvicorn.access": {"handlers": [], "propagate": False},
        "apscheduler.executors.default": {"filters": ["scheduler_runs"]},
    }
    loggers |= {name: {"level": "WARNING"} for name in _QUIET_LIBRARIES}
    # Alembic announces its context on every /readyz (which checks the schema): two lines per probe.
    loggers["alembic.runtime.migration"] = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"nahbar": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "filters": {"scheduler_runs": {"()": f"{__name__}.{SchedulerRunsAtDebug.__qualname__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "nahbar", "stream": "ext://sys.stderr"}
        },
        "loggers": loggers,
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }
