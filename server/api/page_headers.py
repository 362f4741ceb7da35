"""Security headers for the pages this server renders itself (the API docs and the start page)."""

from __future__ import annotations


def page_headers(csp: str, cache: str = "no-cache") -> dict[str, str]:
    """A page's CSP, never framed (clickjacking), no Referer onward, no content-type sniffing."""
    return {
        "Content-Security-Policy": f"{csp}; frame-ancestors 'none'; base-uri 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": cache,
    }
