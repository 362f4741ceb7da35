"""The webhook job: send what is due every few seconds (retries, and messages a dead process left)."""

from __future__ import annotations

from typing import Final

from server.core.jobs import Job
from server.runtime import Runtime

SEND_EVERY_S: Final = 2.0


def send(runtime: Runtime) -> int:
    from server.webhooks.sender import WebhookSender

    sender = WebhookSender(runtime.settings, runtime.sessions, runtime.clock)
    try:
        return sender.run()
    finally:
        sender.close()


def forget(runtime: Runtime) -> None:
    from server.webhooks.sender import WebhookSender

    sender = WebhookSender(runtime.settings, runtime.sessions, runtime.clock)
    try:
        sender.forget_old()
    finally:
        sender.close()


JOBS: list[Job] = [
    Job("webhook-send", send, every_s=SEND_EVERY_S, at_start=True),
    Job("webhook-log-cleanup", forget, every_s=3600, at_start=True),
]
