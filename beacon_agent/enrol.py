"""Exchange a one-time enrolment code for this gateway's token; keep the token private and the server's
address beside it, so that `beacon-agent run` needs no further setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from beacon_agent.config import SERVER_URL_FILE, TOKEN_FILE

ENROL_PATH: Final = "/gateway/v1/enroll"
_NEW_CODE: Final = "ask the charity's admin for a new one"
# What the server's problem codes mean for the person at the Pi, in their words.
_PROBLEMS: Final = {
    "code_used": f"this code was already used (a code works only once); {_NEW_CODE}",
    "code_expired": f"this code has expired (a code is valid for 72 hours); {_NEW_CODE}",
    "code_unknown": f"the server does not know this code: check it for typos, or {_NEW_CODE}",
}


class EnrolmentError(Exception):
    """The server refused the code, or is not a Nahbar server; the message says what to do."""


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


def _refusal(answer: httpx.Response) -> EnrolmentError:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "code" not in body:
        return EnrolmentError(
            f"{answer.request.url} answered HTTP {answer.status_code}, not as a Nahbar server does; "
            "check the --server address"
        )
    plain = _PROBLEMS.get(str(body["code"]))
    return EnrolmentError(plain or f"the server refused (HTTP {answer.status_code}): {body.get('detail')}")


def enrol(client: httpx.Client, code: str, state_dir: Path) -> Enrolled:
    """POST the code to the server at `client.base_url`; keep the token and that address in `state_dir`."""
    answer = client.post(ENROL_PATH, json={"code": code})
    if answer.status_code != 200:
        raise _refusal(answer)
    try:
        body = answer.json()
        token, enrolled = body["token"], Enrolled(gateway_id=body["gateway_id"], site_id=body["site_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrolmentError(
            f"{answer.request.url} answered, but not with a gateway token; check the --server address"
        ) from exc
    write_secret(state_dir / TOKEN_FILE, token)
    write_secret(state_dir / SERVER_URL_FILE, str(client.base_url).rstrip("/") + "\n")
    return enrolled
