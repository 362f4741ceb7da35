"""What a client is told when its request is malformed or invalid: where, which field, and why."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in

JSON = {"content-type": "application/json"}


def problem_of(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def test_malformed_json_answers_400_with_the_line_and_column(client, session: Session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)

    answer = client.post(
        "/gateway/v1/events", content=b'{"events": [{"id": "abcdefgh",, }]}', headers=gateway | JSON
    )

    body = problem_of(answer, 400, "malformed_json")
    assert (
        body["detail"]
        == "Malformed JSON at line 1, column 31: Expecting property name enclosed in double quotes."
    )
    assert body["errors"] == [{"field": "body", "message": body["detail"]}]

    answer = client.post(
        "/mobile/v1/optin", content=b'{\n  "scopes": ["volunteer"],\n  "language": de\n}', headers=JSON
    )

    assert problem_of(answer, 400, "malformed_json")["detail"] == (
        "Malformed JSON at line 3, column 15: Expecting value."
    )


def test_a_body_that_is_not_text_is_a_readable_400(client):
    answer = client.post("/mobile/v1/optin", content=b'{"scopes": "\xff\xfe"}', headers=JSON)

    assert problem_of(answer, 400, "bad_request")["detail"] == (
        "The request body could not be read; send JSON encoded as UTF-8."
    )


def test_a_wrong_type_names_the_field_and_the_reason(client, session: Session, clock: Clock):
    answer = client.post(
        "/mobile/v1/optin", json={"consent_text_version": "2026-11", "scopes": 5, "language": "de"}
    )

    assert problem_of(answer, 422, "validation_failed")["detail"] == (
        "Invalid request: scopes: Input should be a valid list."
    )

    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)
    bad = dict(event("evt-rssi-01", phone, clock()), rssi="loud")

    answer = client.post("/gateway/v1/events", json={"events": [bad]}, headers=gateway)

    assert problem_of(answer, 422, "validation_failed")["detail"] == (
        "1 of 1 events rejected (the others were stored): events[0].rssi: Input should be a valid number, "
        "unable to parse string as a number."
    )


def test_many_errors_show_the_first_three_and_count_the_rest(client):
    answer = client.post("/mobile/v1/optin", json={"a": 1, "b": 2, "c": 3, "d": 4})

    body = problem_of(answer, 422, "validation_failed")
    assert len(body["errors"]) > 3
    assert body["detail"].startswith("Invalid request: ")
    assert body["detail"].endswith(f"; and {len(body['errors']) - 3} more (see errors).")


def test_a_wrong_method_says_which_are_allowed(client):
    answer = client.put("/mobile/v1/optin", json={})

    problem_of(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"
