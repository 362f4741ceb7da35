"""Signed-in browsers for the admin pages: the session and CSRF cookies of a user of tests/admin_world.py, and
the CSRF token their forms carry."""

from __future__ import annotations

from dataclasses import dataclass

from server.core.const import CSRF_COOKIE
from tests.admin_world import World


@dataclass(frozen=True)
class Browser:
    cookie: str  # the Cookie header a browser sends to /admin
    csrf: str  # what the pages put into every form's csrf_token field


def browser_of(world: World, who: str) -> Browser:
    headers = world.headers[who]
    csrf = headers["X-CSRF-Token"]
    return Browser(f"{headers['Cookie']}; {CSRF_COOKIE}={csrf}", csrf)
