"""A gateway deletes events once the server answers, so the answer must only leave after the commit."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.presence.models import ProximityEvent
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in


def test_events_are_committed_before_the_response_starts(settings, engine, session, clock: Clock):
    seen_at_response_start: list[int] = []
    app = create_app(settings, clock=clock)

    async def observing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def observe(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/gateway/v1/events":
                with Session(engine) as other:  # a separate connection sees only committed rows
                    seen_at_response_start.append(
                        other.scalar(select(func.count()).select_from(ProximityEvent)) or 0
                    )
            await send(message)

        await app(scope, receive, observe)

    charity = make_charity(session, clock())
    with TestClient(observing_app) as client:
        gateway = enrol(client, charity.enrolment_code)
        phone = opt_in(client)
        answer = client.post(
            "/gateway/v1/events", json={"events": [event("evt-c-00001", phone, clock())]}, headers=gateway
        )
    assert answer.status_code == 200
    assert seen_at_response_start == [1]
