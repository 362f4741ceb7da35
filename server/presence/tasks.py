"""Presence jobs."""

from __future__ import annotations

from server.scheduler import Job

JOBS: list[Job] = []
