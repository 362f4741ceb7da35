"""The OpenAPI document as clients need it: every error answer is problem+json with one shared schema
(ProblemDetails), and every operation lists the errors it can answer.

Routes declare what only they know (a 409 for a taken name, a 429 for a rate limit); what follows from an
operation's shape is added here, from the document itself: a body can be malformed (400), too large (413) or
invalid (422); parameters can be invalid (422); a credential can be missing or wrong (401); a path names an
object that may not exist (404); If-Match may be missing (428) or stale (412).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

from server.core.errors import PROBLEM_JSON, ProblemDetails

REF: Final = "#/components/schemas/{model}"
PROBLEM_REF: Final = {"$ref": REF.format(model="ProblemDetails")}
# FastAPI's own 422 schema, replaced by ProblemDetails everywhere.
_FASTAPI_ERROR_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")

DESCRIPTIONS: Final[dict[str, str]] = {
    "400": "The body is not JSON (malformed_json) or cannot be read (bad_request)",
    "401": "No credential, or an unknown, revoked or expired one (unauthorized)",
    "403": "Not allowed (forbidden)",
    "404": "No such object, or not one of yours (not_found)",
    "409": "Conflicts with the current state (conflict)",
    "410": "Gone (gone)",
    "412": "If-Match names an older version; read again and retry (precondition_failed)",
    "413": "The body is too large (payload_too_large)",
    "422": "Invalid request; `errors` names the fields (validation_failed)",
    "428": "The change needs If-Match with the ETag last read (precondition_required)",
    "429": "Too many requests; see Retry-After",
    "503": "Not ready yet; retry shortly (service_unavailable)",
}


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json, /docs) answer the completed document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the errors each operation can answer and document every error as problem+json."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template=REF)
    schemas.update(problem.pop("$defs", {}))
    schemas["ProblemDetails"] = problem
    for item in document.get("paths", {}).values():
        for operation in item.values():
            _complete_operation(operation)
    text = repr(document["paths"])
    for name in _FASTAPI_ERROR_SCHEMAS:
        if REF.format(model=name) not in text:
            schemas.pop(name, None)
    return document


def _complete_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    expected: set[str] = set()
    if "requestBody" in operation:
        expected |= {"400", "413", "422"}
    if parameters:
        expected.add("422")
    if operation.get("security"):
        expected.add("401")
    if any(p.get("in") == "path" for p in parameters):
        expected.add("404")
    if any(p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in parameters):
        expected |= {"412", "428"}
    for status in expected:
        responses.setdefault(status, {})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            _as_problem(status, response)


def _as_problem(status: str, response: dict[str, Any]) -> None:
    """One media type, problem+json; a route's own error schema (e.g. a batch's partial answer) is kept."""
    response.setdefault("description", DESCRIPTIONS.get(status, "An error (see code and detail)"))
    schema = next((c.get("schema") for c in response.get("content", {}).values() if c.get("schema")), None)
    generic = schema is None or schema.get("type") == "object" and len(schema) == 1
    if schema is not None and schema.get("$ref", "").rsplit("/", 1)[-1] in _FASTAPI_ERROR_SCHEMAS:
        generic = True
    response["content"] = {PROBLEM_JSON: {"schema": dict(PROBLEM_REF) if generic else schema}}
