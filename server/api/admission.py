"""Admission: at most so many requests of a worker are handled at once; the rest wait briefly, then get 503.

Why this makes a hang impossible rather than unlikely: FastAPI runs sync dependencies, endpoints and their
response validation on AnyIO's thread pool, one hop after the other, and a request's transaction (with the
row locks it took) stays open across those hops. If more requests are in flight than the pool has threads,
the threads can all be taken by requests waiting for a lock that a request holds while it waits for a thread
to finish: nothing moves again. Admitting fewer requests than there are threads means an admitted request
always finds a thread for its next hop, and with the database pool sized for the admitted requests, a
connection as well. The bodies are read before a slot is taken, so a slow upload holds no slot.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Collection
from typing import Final

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# AnyIO's default thread limiter, which sync endpoints share: admitted requests must stay below it.
THREADS: Final = 40
EXEMPT: Final = frozenset({"/healthz"})  # answers from the event loop, touches nothing


class Admission:
    """Pure ASGI middleware: `slots` requests at once; a request waits at most `wait_s` for a slot."""

    def __init__(self, app: ASGIApp, slots: int, wait_s: float, exempt: Collection[str] = EXEMPT) -> None:
        if not 1 <= slots < THREADS:
            raise ValueError(f"slots must be between 1 and {THREADS - 1}, below the thread pool's size")
        self.app = app
        self.slots = slots
        self.wait_s = wait_s
        self.exempt = frozenset(exempt)
        self._semaphore: tuple[asyncio.AbstractEventLoop, anyio.Semaphore] | None = None

    def _slots(self) -> anyio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:
            self._semaphore = (loop, anyio.Semaphore(self.slots, fast_acquire=True))
        return self._semaphore[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        while True:  # the whole body first (its size is capped outside this middleware)
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        semaphore = self._slots()
        try:
            with anyio.fail_after(self.wait_s):
                await semaphore.acquire()
        except TimeoutError:
            await _refuse(send, max(1, math.ceil(self.wait_s)))
            return
        try:
            await self.app(scope, replay, send)
        finally:
            semaphore.release()


async def _refuse(send: Send, retry_after_s: int) -> None:
    body = json.dumps(
        {
            "type": "https://nahbar.org/problems/overloaded",
            "title": "overloaded",
            "status": 503,
            "code": "overloaded",
            "detail": f"The server is busy with other requests; retry after {retry_after_s} s.",
            "retry_after_s": retry_after_s,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after_s).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
