"""Typed domain errors rendered as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
_SQLITE_OVERFLOW = "too large to convert to SQLite INTEGER"
_FASTAPI_BODY_ERROR = "There was an error parsing the body"
MAX_ERRORS_IN_DETAIL = 3  # the rest are in `errors`; a detail stays a sentence
log = logging.getLogger("nahbar.errors")


class ProblemFieldError(BaseModel):
    field: str = Field(description="Where, e.g. `events[3].observed_at` or `query.since`")
    message: str = Field(description="What is wrong with it")


class ProblemDetails(BaseModel):
    """Every error answer (RFC 9457 problem+json): branch on `code`, show `detail` to a person."""

    model_config = ConfigDict(extra="allow")  # some problems add fields, e.g. current_etag, retry hints

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int = Field(description="The HTTP status again")
    code: str = Field(description="Stable, e.g. validation_failed, not_found, precondition_failed")
    detail: str = Field(description="What went wrong and what to do, in words a person can act on")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="The fields at fault (validation_failed, malformed_json)"
    )


class NahbarError(Exception):
    """A failure a client can act on: an HTTP status, a stable code and a human message."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.headers = headers or {}  # e.g. Retry-After: a client acts on it without parsing the body
        self.detail = detail
        self.extra = extra or {}


class Unauthorized(NahbarError):
    status = 401
    code = "unauthorized"


class Forbidden(NahbarError):
    status = 403
    code = "forbidden"


class NotFound(NahbarError):
    status = 404
    code = "not_found"


class Conflict(NahbarError):
    status = 409
    code = "conflict"


class Gone(NahbarError):
    status = 410
    code = "gone"


class ServiceUnavailable(NahbarError):
    status = 503
    code = "service_unavailable"


class PayloadTooLarge(NahbarError):
    status = 413
    code = "payload_too_large"


# Failures of the admin API's rules: preconditions, throttling and rule violations.


class PreconditionFailed(NahbarError):
    status = 412
    code = "precondition_failed"


class PreconditionRequired(NahbarError):
    status = 428
    code = "precondition_required"


class TooManyAttempts(NahbarError):
    status = 429
    code = "too_many_attempts"


class RuleViolation(NahbarError):
    """A request that is well-formed but breaks a rule protecting the people prompted (422)."""

    status = 422
    code = "rule_violation"


class InsufficientScope(NahbarError):
    status = 403
    code = "insufficient_scope"


class CsrfFailed(NahbarError):
    status = 403
    code = "csrf_failed"


def problem(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": f"https://nahbar.org/problems/{code}", "title": code.replace("_", " "), "status": status}
    body |= {"code": code, "detail": detail, **extra}
    headers = ({"WWW-Authenticate": "Bearer"} if status == 401 else {}) | (headers or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """Render a pydantic error location as `events[3].observed_at` (dropping the `body` root)."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_errors(errors: Any) -> list[dict[str, str]]:
    return [{"field": field_path(e["loc"]), "message": e["msg"]} for e in errors]


def validation_detail(errors: list[dict[str, str]], lead: str = "Invalid request") -> str:
    """`Invalid request: events[0].rssi: Input should be a valid number.`, the first few errors in full."""
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:MAX_ERRORS_IN_DETAIL])
    more = len(errors) - MAX_ERRORS_IN_DETAIL
    return f"{lead}: {shown}" + (f"; and {more} more (see errors)." if more > 0 else ".")


def malformed_json_detail(error: dict[str, Any], document: Any) -> str:
    """`Malformed JSON at line 1, column 28: Expecting ',' delimiter.` from FastAPI's json_invalid error."""
    loc = error.get("loc") or ()
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    reason = str((error.get("ctx") or {}).get("error") or "not valid JSON")
    if position is None or not isinstance(document, str):
        return f"Malformed JSON in the request body: {reason}."
    # As the json module counts: lines from 1, columns from 1.
    line = document.count("\n", 0, position) + 1
    column = position - document.rfind("\n", 0, position)
    return f"Malformed JSON at line {line}, column {column}: {reason}."


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NahbarError)
        return problem(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if malformed is not None:
            # The body is not JSON at all: a 400 that says where, not a field named by a character offset.
            detail = malformed_json_detail(malformed, exc.body)
            return problem(400, "malformed_json", detail, errors=[{"field": "body", "message": detail}])
        errors = validation_errors(exc.errors())
        return problem(422, "validation_failed", validation_detail(errors), errors=errors)

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == _FASTAPI_BODY_ERROR:  # a body that is not even text
            detail = "The request body could not be read; send JSON encoded as UTF-8."
        return problem(exc.status_code, code, detail, headers=dict(exc.headers or {}))  # e.g. Allow on a 405

    async def on_data_error(_request: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot hold in its column's type, such as an id past 2^31 - 1 in a path or
        # filter, which PostgreSQL refuses (SQLite finds nothing): the request's fault, so a 422 rather than a
        # 500; logged with its cause in case a bug of ours made the value.
        log.warning("the database refused a value: %s", exc.__cause__ or exc)
        return problem(
            422, "value_out_of_range", "A value in the request is out of range for what it refers to."
        )

    async def on_database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # No connection in time (the pool is exhausted), the database refused one (too many clients, down),
        # a row lock not had within the lock timeout, a transaction ended for idling: all pass, so the
        # client is told to come back rather than handed a 500. Logged without the statement's values.
        cause = getattr(exc, "orig", None) or exc
        log.warning(
            "database unavailable for a request: %s",
            type(cause).__name__,
            extra={"sqlstate": getattr(cause, "sqlstate", None)},
        )
        return problem(
            503,
            "database_unavailable",
            "The database is busy or unreachable; retry in a few seconds.",
            headers={"Retry-After": "2"},
            retry_after_s=2,
        )

    async def on_overflow(request: Request, exc: Exception) -> JSONResponse:
        # SQLite's driver cannot even bind an integer past 64 bits (an id like 2^70 in a path or filter): the
        # same refusal as PostgreSQL's DataError above. Any other overflow is a bug of ours: still a 500.
        if _SQLITE_OVERFLOW not in str(exc):
            raise exc
        return await on_data_error(request, exc)

    app.add_exception_handler(NahbarError, on_domain_error)
    app.add_exception_handler(OperationalError, on_database_unavailable)
    app.add_exception_handler(PoolTimeout, on_database_unavailable)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(OverflowError, on_overflow)
