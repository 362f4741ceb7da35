"""Presence jobs."""

from __future__ import annotations

from typing import Final

from server.runtime import Runtime
from server.scheduler import Job

# How often the job looks whether a window turned: a clock comparison when it did not. The tables hold the
# next window ahead of time, so a rotation up to one window late still resolves every phone on time; this
# only bounds how long phones running a window fast go unresolved after a turn (requests also ask for the
# rotation as soon as they see the turn). Must stay well under 2^K seconds for the smallest K in use.
ROTATION_CHECK_S: Final = 5.0


def rotate_eids(runtime: Runtime) -> bool:
    """Swap in the EIDs of the window that became needed, when one did (one AES block a subscriber)."""
    return runtime.eid_index.rotate_if_due()


# Every worker keeps its own table: this job must run in every process, not only in an elected leader.
JOBS: list[Job] = [Job("eid-rotation", rotate_eids, every_s=ROTATION_CHECK_S, at_start=True)]
