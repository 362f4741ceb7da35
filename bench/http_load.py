"""A lean HTTP/1.1 client for load generators: keep-alive connections over asyncio streams, requests written
by hand, answers read by Content-Length. httpx's async client used as much CPU as the server it measured (70%
of a core at 100 requests/s, on the same two cores), so the benchmark partly measured its own client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 this client can read."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class Pool:
    """Keep-alive connections to one server, opened as needed and reused; `limit` open at most."""

    base: str
    limit: int = 200
    timeout_s: float = 10.0
    _idle: list[_Connection] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._authority = f"{self._host}:{self._port}".encode()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST `body` (JSON) and return the status and the answer's body."""
        return await self.request("POST", path, body, headers)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """GET `path` and return the status and the answer's body."""
        return await self.request("GET", path, None, headers)

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        content = (
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
            if body is not None
            else b""
        )
        head = (
            method.encode()
            + b" "
            + path.encode()
            + b" HTTP/1.1\r\nHost: "
            + self._authority
            + b"\r\n"
            + content
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
            + b"\r\n"
        )
        body = body or b""
        async with self._slots:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._open()
            try:
                status, answer, keep = await self._exchange(connection, head + body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                connection.writer.close()
                if reused and isinstance(exc, (ConnectionError, asyncio.IncompleteReadError)):
                    # The server closed a connection that sat idle past its keep-alive: once more, afresh
                    # (what HTTP clients do; the request was not read, or it would have been answered).
                    return await self._fresh(head + body)
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            self._keep(connection, keep)
            return status, answer

    async def _fresh(self, request: bytes) -> tuple[int, bytes]:
        connection = await self._open()
        try:
            status, answer, keep = await self._exchange(connection, request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            connection.writer.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        self._keep(connection, keep)
        return status, answer

    def _keep(self, connection: _Connection, keep: bool) -> None:
        if keep:
            self._idle.append(connection)
        else:
            connection.writer.close()

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bytes, bool]:
        return await asyncio.wait_for(self._read(connection, request), self.timeout_s)

    @staticmethod
    async def _read(connection: _Connection, request: bytes) -> tuple[int, bytes, bool]:
        connection.writer.write(request)
        head = await connection.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 "):
            raise HttpError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
        status = int(lines[0][9:12])
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        if "content-length" not in fields:
            raise HttpError(f"answer {status} without Content-Length (chunked answers are not read here)")
        body = await connection.reader.readexactly(int(fields["content-length"]))
        return status, body, fields.get("connection", "").lower() != "close"

    async def close(self) -> None:
        for connection in self._idle:
            connection.writer.close()
        self._idle.clear()
