"""What schemathesis found (tests/test_api_fuzz.py), each pinned by a plain test on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit.models import AuditEntry
from tests.admin_world import API, make_world
from tests.conftest import Clock

HUGE = 2**70  # past 64 bits: SQLite's driver cannot even bind it


def problem_status(answer) -> int:
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    return answer.status_code


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/organisations/{HUGE}", None),
        ("GET", f"/campaigns?organisation_id={HUGE}", None),
        ("GET", f"/decisions?site_id={HUGE}", None),
        ("POST", f"/campaigns/{HUGE}/activate", None),
        ("POST", "/sites", {"organisation_id": HUGE, "name": "Door", "timezone": "Europe/Berlin"}),
    ],
)
def test_an_id_past_64_bits_is_refused_not_a_500(client, session: Session, clock: Clock, method, path, body):
    world = make_world(session, clock())

    answer = client.request(method, f"{API}{path}", json=body, headers=world.headers["operator"])

    # SQLite cannot bind it (422); PostgreSQL compares it as a number and finds nothing (404).
    assert problem_status(answer) in {404, 422}, answer.text
    if answer.status_code == 422:
        assert answer.json()["code"] == "value_out_of_range"


@pytest.mark.parametrize(
    ("path", "body"),
    [("/organisations/987654/simulate", {}), ("/organisations/987654/test-devices/pairing-codes", None)],
)
def test_the_operator_acting_on_an_organisation_that_does_not_exist_gets_404(
    client, session: Session, clock: Clock, path, body
):
    world = make_world(session, clock())
    audited = session.scalar(select(func.count()).select_from(AuditEntry))

    answer = client.post(f"{API}{path}", json=body, headers=world.headers["operator"])

    assert problem_status(answer) == 404, answer.text
    assert answer.json()["code"] == "not_found"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audited
