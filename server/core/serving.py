"""How every way of serving the app (`nahbar serve` and its workers, the demo, the tests' live servers)
starts uvicorn, so that they agree on whose address a request comes from and on what gets logged."""

from __future__ import annotations

from typing import Any


def uvicorn_options(log_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """uvicorn's keyword arguments besides the app, host, port and workers."""
    return {
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 (its default FORWARDED_ALLOW_IPS) and put
        # the claimed address in place of the peer's: a locked-out client on the same machine, or behind a
        # local proxy that passes the header on, would pick a new address per try. The caller's address is
        # server/api/client.py's to decide, from NAHBAR_TRUSTED_PROXIES alone.
        "proxy_headers": False,
        # uvicorn's access log writes client addresses and full paths with their tokens; ours does neither.
        "access_log": False,
        # Applied by uvicorn in its own process and again in each worker (None: logging as it is).
        "log_config": log_config,
    }
