"""The delivery sweep: retries due rows (backoff, Retry-After), expires late ones, recovers crashed claims."""

from __future__ import annotations

from server.core.const import DELIVERY_SWEEP_EVERY_S
from server.runtime import Runtime
from server.scheduler import Job


def sweep(runtime: Runtime) -> None:
    """Wake this process's sender; without one (a scheduler-only process) send here."""
    from server.delivery.service import Outbox, outbox_of

    wake = outbox_of(runtime.sessions)
    if wake is not None:
        wake()
        return
    outbox = Outbox(runtime.settings, runtime.sessions, runtime.clock)
    try:
        while outbox.send_due():
            pass
    finally:
        outbox.stop()


# No run at start: the sender wakes itself when it starts, for rows a previous process left due.
JOBS = [Job("delivery-sweep", sweep, every_s=DELIVERY_SWEEP_EVERY_S)]
