"""The OpenAPI document generated clients rely on: valid, every `$ref` resolves, every error answer is
documented as problem+json with the shared ProblemDetails schema, and each operation lists the errors it can
answer (400 for a body, 412/428 for If-Match, 409 where a conflict is possible)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from server.app import create_app
from server.core.config import Settings
from server.core.errors import PROBLEM_JSON
from tests.conftest import TEST_SECRET

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# Operations that can answer 409 (a service raises Conflict for them).
CONFLICTS = {
    "admin_create_organisation",
    "admin_update_member",
    "admin_remove_member",
    "admin_update_campaign",
    "admin_activate_campaign",
    "admin_pause_campaign",
    "admin_resume_campaign",
    "admin_end_campaign",
    "admin_create_beacon",
    "admin_disable_user",
    "gateway_enroll",
    "mobile_add_push_channel",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    settings = Settings(environment="test", database_url="sqlite://", secret_key=TEST_SECRET)
    return create_app(settings).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {part} is not in an object"
        assert part in node, f"{ref} does not resolve: no {part}"
        node = node[part]
    return node


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_every_ref_resolves(document):
    found = set(refs(document))
    assert found
    for ref in sorted(found):
        resolve(document, ref)


def test_every_error_answer_is_problem_json_with_the_shared_schema(document):
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "code", "detail"} <= set(problem["required"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            where = f"{method.upper()} {path} {status}"
            assert list(response.get("content", {})) == [PROBLEM_JSON], where
            schema = response["content"][PROBLEM_JSON]["schema"]
            named = resolve(document, schema["$ref"])
            # ProblemDetails itself, or a problem with more fields (the gateway's partial batch).
            assert set(problem["required"]) <= set(named["required"]), where
            assert response["description"], where


def test_each_operation_lists_the_errors_it_can_answer(document):
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        statuses = set(operation["responses"])
        headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        if "requestBody" in operation and "application/json" in operation["requestBody"]["content"]:
            assert {"400", "413", "422"} <= statuses, where
        if "if-match" in headers:
            assert {"412", "428"} <= statuses, where
        else:
            assert not {"412", "428"} & statuses, f"{where} takes no If-Match"
        if operation.get("security"):
            assert "401" in statuses, where
        if "{" in path:
            assert "404" in statuses, where
        assert ("409" in statuses) == (operation["operationId"] in CONFLICTS), where


def test_the_gateway_batch_documents_its_partial_answer(document):
    operation = document["paths"]["/gateway/v1/events"]["post"]
    schema = resolve(document, operation["responses"]["422"]["content"][PROBLEM_JSON]["schema"]["$ref"])
    assert {"accepted", "duplicates", "rejected", "prompts", "code", "detail"} <= set(schema["properties"])
    body = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    item = body["properties"]["events"]["items"]
    assert resolve(document, item["properties"]["kind"]["$ref"])["enum"] == ["enter", "dwell", "exit"]
