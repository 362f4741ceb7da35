"""Presence jobs."""

from __future__ import annotations

import logging
from typing import Final

from server.core.jobs import Job
from server.presence.opt_ins import OptInsUnavailable
from server.runtime import Runtime

log = logging.getLogger("nahbar.presence.eid")

# How often the job looks whether a window turned: a clock comparison when it did not. The tables hold the
# next window ahead of time, so a rotation up to one window late still resolves every phone on time; this
# only bounds how long phones running a window fast go unresolved after a turn (requests also ask for the
# rotation as soon as they see the turn). Must stay well under 2^K seconds for the smallest K in use.
ROTATION_CHECK_S: Final = 5.0


def rotate_eids(runtime: Runtime) -> bool:
    """Swap in the EIDs of the window that became needed, when one did (one AES block a subscriber)."""
    return runtime.eid_index.rotate_if_due()


# Opt-ins are added to the index of the worker that took them at once; the others pick them up here, or
# sooner when a gateway batch brings an EID they cannot resolve (server/presence/opt_ins.py).
SYNC_EVERY_S: Final = 10.0


def sync_opt_ins(runtime: Runtime) -> int:
    """Add subscribers who opted in through another worker since this worker's last look."""
    if not runtime.eid_index.loaded:
        return 0  # the rotation job loads everything first
    try:
        return runtime.opt_ins.now()
    except OptInsUnavailable:
        # A look that began earlier is still running (a slow start, a busy machine): it reads what this
        # one would have, and the next run looks again. Not a failure worth a traceback in every worker.
        log.debug("opt-in sync skipped: an earlier look is still running")
        return 0


# Every worker keeps its own table: these jobs must run in every process, not only in an elected leader.
JOBS: list[Job] = [
    Job("eid-rotation", rotate_eids, every_s=ROTATION_CHECK_S, at_start=True, every_process=True),
    Job("eid-opt-in-sync", sync_opt_ins, every_s=SYNC_EVERY_S, every_process=True),
]
