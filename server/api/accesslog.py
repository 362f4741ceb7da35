"""The access log: one line per request naming the route, never what identifies or empowers a person.

A path's parameters can be capabilities (`/p/{token}` answers for a person) or single a person out (a
prompt's id), and query strings carry search terms and subscriber ids, so a line names the route's template
(`/p/{token}`) and no query string. The client's address is left out unless the operator turns it on
(`NAHBAR_LOG_CLIENT_ADDRESSES`). uvicorn's own access log, which writes both, is off (core/serving.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any, Final

from fastapi.routing import iter_route_contexts
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.client import Network, client_address
from server.core import metrics

log = logging.getLogger("nahbar.access")

UNMATCHED: Final = "*"  # stands for the rest of a path that matched no route
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Templates:
    """Route templates of an app, looked up by the route the router chose (or, failing that, by path)."""

    def __init__(self, routes: Sequence[Any]) -> None:
        self._by_route: dict[int, list[tuple[re.Pattern[str], str]]] = {}
        self._all: list[tuple[re.Pattern[str], str]] = []
        self._prefixes: set[str] = set()
        for context in iter_route_contexts(routes):
            template, regex = context.path_format, getattr(context, "path_regex", None)
            if not isinstance(template, str) or not isinstance(regex, re.Pattern):
                continue
            self._by_route.setdefault(id(context.original_route), []).append((regex, template))
            self._all.append((regex, template))
            first = template.split("/", 2)[1]
            if first and "{" not in first:
                self._prefixes.add(first)

    def of(self, scope: Scope) -> str:
        path: str = scope["path"]
        route = scope.get("route")
        candidates = self._by_route.get(id(route), self._all) if route is not None else self._all
        if len(candidates) == 1 and route is not None:
            return candidates[0][1]
        for regex, template in candidates:
            if regex.match(path):
                return template
        # No route: keep the first segment when it is one of the app's own (never a secret), drop the rest.
        first = path.split("/", 2)[1] if path.startswith("/") else ""
        return f"/{first}/{UNMATCHED}" if first in self._prefixes else f"/{UNMATCHED}"


class AccessLog:
    """Logs method, route template, status and duration of each HTTP request to `nahbar.access`, and counts
    them in the request latency histogram (labelled by the same template, never the path)."""

    def __init__(
        self, app: ASGIApp, log_client_addresses: bool = False, trusted_proxies: Sequence[Network] = ()
    ) -> None:
        self.app = app
        self.log_client_addresses = log_client_addresses
        self.trusted_proxies = trusted_proxies
        self._templates: _Templates | None = None  # the app's routes are complete at the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it starts a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        if self._templates is None:
            self._templates = _Templates(scope["app"].routes)
        route = self._templates.of(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"  # a client may send any word
        metrics.REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, object] = {
            "method": scope["method"],
            "path": route,
            "status": status,
            "ms": round(seconds * 1000, 1),
        }
        if self.log_client_addresses:
            fields["client"] = client_address(HTTPConnection(scope), self.trusted_proxies)
        log.info("request", extra=fields)
