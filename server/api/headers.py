"""Security headers: every HTML page may not be framed, sends no Referer and is not sniffed as another type.

One middleware sets them on every `text/html` answer, whichever route made it, so a new page cannot forget
them. A page that knows what it loads sets its own, stricter Content-Security-Policy (`html_headers`); the
middleware keeps it and only adds `frame-ancestors 'none'` when it is missing. A page without one gets
`FALLBACK_CSP`, which forbids framing and plugins but lets the page load what it loads (FastAPI's /docs
takes its scripts from a CDN).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_FRAMES: Final = "frame-ancestors 'none'"
# For a page that loads only from this server (and inline styles or scripts only by nonce).
SELF_ONLY_CSP: Final = (
    f"default-src 'self'; {NO_FRAMES}; base-uri 'none'; form-action 'self'; object-src 'none'"
)
FALLBACK_CSP: Final = f"{NO_FRAMES}; base-uri 'self'; object-src 'none'"
PAGE_HEADERS: Final = {
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Referrer-Policy": "no-referrer",  # landing and invite links carry a capability token in the path
    "X-Content-Type-Options": "nosniff",
}


def html_headers(csp: str = SELF_ONLY_CSP) -> dict[str, str]:
    """The headers of an HTML page with this Content-Security-Policy (the middleware adds them anyway)."""
    return {"Content-Security-Policy": with_no_frames(csp), **PAGE_HEADERS}


def with_no_frames(csp: str) -> str:
    """The policy with `frame-ancestors 'none'` added unless it already says who may frame the page."""
    if "frame-ancestors" in csp:
        return csp
    return f"{csp.rstrip().rstrip(';')}; {NO_FRAMES}" if csp.strip() else NO_FRAMES


_NOSNIFF: Final = (b"x-content-type-options", b"nosniff")
_PAGE: Final = [(name.lower().encode(), value.encode()) for name, value in PAGE_HEADERS.items()]


def _secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if not content_type.lower().startswith(b"text/html"):
        return headers if _NOSNIFF[0] in names else [*headers, _NOSNIFF]
    out = [
        (name, with_no_frames(value.decode("latin-1")).encode("latin-1"))
        if name.lower() == b"content-security-policy"
        else (name, value)
        for name, value in headers
    ]
    if b"content-security-policy" not in names:
        out.append((b"content-security-policy", FALLBACK_CSP.encode()))
    out.extend(header for header in _PAGE if header[0] not in names)
    return out


class SecurityHeaders:
    """ASGI middleware: `nosniff` on every answer; on HTML pages also no framing and no Referer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _secured(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_secured)
