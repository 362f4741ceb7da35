"""How every way of serving the app (`nahbar serve` and its workers, the demo, the tests' live servers)
starts uvicorn, so that they agree on whose address a request comes from and on what gets logged."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Final

# prometheus-client's multiprocess mode: each worker writes its metrics' values to files here, and /metrics
# adds every worker's up. prometheus-client reads it when first imported: set before the workers start.
METRICS_FOLDER_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


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


def metrics_folder(workers: int) -> tuple[Path | None, bool]:
    """Prepare the workers' shared metrics folder: the operator's `PROMETHEUS_MULTIPROC_DIR`, emptied (values
    a previous run left would be added to this run's), or with several workers and none set, a private one
    made here. Returns the folder (None: one process, whose metrics live in its memory) and whether it was
    made here (the caller removes it at exit)."""
    given = os.environ.get(METRICS_FOLDER_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return folder, False
    if workers <= 1:
        return None, False
    folder = Path(tempfile.mkdtemp(prefix="nahbar-metrics-"))
    os.environ[METRICS_FOLDER_ENV] = str(folder)  # the workers inherit it
    return folder, True
