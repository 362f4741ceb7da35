"""Liveness and readiness, public by design: they reveal nothing but "up" and "ready"."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from server.api.deps import RuntimeDep
from server.core.errors import problem
from server.core.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])
RETRY: Final = {"Retry-After": "5"}  # not ready yet: a load balancer or client may ask again then


@router.get("/healthz", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=None,
    responses={
        503: {
            "description": "Not ready: database_unreachable, migrations_pending or eid_index_loading",
        }
    },
)
def readyz(runtime: RuntimeDep) -> dict[str, str] | JSONResponse:
    """The database answers, its schema is at the newest migration, and the EID index is loaded."""
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(runtime.engine)
    except SQLAlchemyError as exc:
        return problem(
            503, "database_unreachable", f"The database does not answer: {type(exc).__name__}.", headers=RETRY
        )
    head = head_revision()
    if current != head:
        return problem(
            503,
            "migrations_pending",
            f"Database schema is at {current}, code expects {head}: run 'nahbar migrate'.",
            headers=RETRY,
        )
    if not runtime.eid_index.loaded:
        return problem(
            503, "eid_index_loading", "The opted-in phones' keys are still being loaded.", headers=RETRY
        )
    return {"status": "ready", "schema": head or ""}
