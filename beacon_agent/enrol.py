"""Exchange a one-time enrolment code for this gateway's token, and keep the token private."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx


class EnrolmentError(Exception):
    """The server refused the code; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Enrolled:
    gateway_id: int
    site_id: int


def write_secret(path: Path, value: str) -> None:
    """Write `value` so that only the agent's user can read it (0600), replacing any older file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def enrol(client: httpx.Client, code: str, token_file: Path) -> Enrolled:
    """POST the code to /gateway/v1/enroll and store the returned token in `token_file`."""
    answer = client.post("/gateway/v1/enroll", json={"code": code})
    if answer.status_code != 200:
        detail = answer.json().get("detail", answer.text) if answer.content else answer.reason_phrase
        raise EnrolmentError(f"enrolment refused ({answer.status_code}): {detail}")
    body = answer.json()
    write_secret(token_file, body["token"])
    return Enrolled(gateway_id=body["gateway_id"], site_id=body["site_id"])
