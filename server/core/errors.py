"""Typed domain errors rendered as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("nahbar.errors")


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


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NahbarError)
        return problem(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc.errors())
        names = ", ".join(sorted({e["field"] for e in errors}))
        return problem(422, "validation_failed", f"Invalid request: check {names}.", errors=errors)

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

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

    app.add_exception_handler(NahbarError, on_domain_error)
    app.add_exception_handler(OperationalError, on_database_unavailable)
    app.add_exception_handler(PoolTimeout, on_database_unavailable)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DataError, on_data_error)
