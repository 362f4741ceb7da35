"""Gateway enrolment with one-time codes."""

from __future__ import annotations

from sqlalchemy import select

from server.sites.models import Gateway
from tests.conftest import Clock
from tests.world import make_charity


def test_a_code_works_once_and_is_forgiving_about_case_and_spaces(client, session, clock: Clock):
    code = make_charity(session, clock()).enrolment_code
    typed = " " + code.lower() + " "
    first = client.post("/gateway/v1/enroll", json={"code": typed})
    assert first.status_code == 200, first.text
    assert first.json()["token"].startswith("ngw_")
    again = client.post("/gateway/v1/enroll", json={"code": code})
    assert (again.status_code, again.json()["code"]) == (410, "code_used")
    assert "already used" in again.json()["detail"]
    assert "new code" in again.json()["detail"]
    session.expire_all()
    gateway = session.scalar(select(Gateway))
    assert gateway.enrolment_code_hash is None
    assert gateway.token_hash != first.json()["token"]


def test_an_expired_code_is_refused(client, session, clock: Clock):
    code = make_charity(session, clock()).enrolment_code
    clock.advance(73 * 3600)
    answer = client.post("/gateway/v1/enroll", json={"code": code})
    assert (answer.status_code, answer.json()["code"]) == (409, "code_expired")
    assert answer.json()["detail"].startswith("This enrolment code has expired")


def test_a_used_code_stays_used_after_the_gateway_is_revoked_and_an_unknown_one_is_unknown(
    client, session, clock: Clock
):
    code = make_charity(session, clock()).enrolment_code
    assert client.post("/gateway/v1/enroll", json={"code": code}).status_code == 200
    gateway = session.scalar(select(Gateway))
    gateway.revoked_at = clock()
    gateway.token_hash = None
    session.commit()
    again = client.post("/gateway/v1/enroll", json={"code": code})
    assert (again.status_code, again.json()["code"]) == (410, "code_used")
    unknown = client.post("/gateway/v1/enroll", json={"code": "ABCD-EFGH-JKLM"})
    assert (unknown.status_code, unknown.json()["code"]) == (401, "code_unknown")
    assert "typos" in unknown.json()["detail"]
