"""The delivery sweep: retries due rows (backoff, Retry-After), expires late ones, recovers crashed claims."""

from __future__ import annotations

from server.core.const import DELIVERY_SWEEP_EVERY_S
from server.core.jobs import Job
from server.runtime import Runtime


def sweep(runtime: Runtime) -> None:
    """Have this process's sender sweep; without one (a scheduler-only process) send here."""
    from server.delivery.service import Outbox, outbox_of

    outbox_sweep = outbox_of(runtime.sessions)
    if outbox_sweep is not None:
        outbox_sweep()
        return
    outbox = Outbox(runtime.settings, runtime.sessions, runtime.clock)
    try:
        while outbox.send_due():
            pass
    finally:
        outbox.stop()


# No run at start: the sender sweeps itself when it starts, for rows a previous process left due.
JOBS = [Job("delivery-sweep", sweep, every_s=DELIVERY_SWEEP_EVERY_S)]
