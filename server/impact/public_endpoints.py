"""The public ends of the impact domain: a charity's open data, and confirmations from its own pages."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server.api.deps import RuntimeDep, SessionDep
from server.api.ratelimit import limit_by_client
from server.impact import confirmations, open_data
from server.impact.schemas import ConfirmationResult

router = APIRouter(tags=["open data and confirmations"])
CACHE_S = 3600
# What the document cannot see from the routes' shapes: the per-address limits and the conditional answer.
OPEN_DATA_ANSWERS: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the copy named by If-None-Match is current"},
    429: {"description": "Too many requests from this address"},
}


def limit_open_data(request: Request, runtime: RuntimeDep) -> None:
    per_minute = runtime.settings.open_data_per_minute_per_client
    limit_by_client(
        request,
        runtime,
        "open-data",
        per_minute,
        60,
        f"Too many open-data requests from this address: at most {per_minute} a minute. The data changes "
        "once a day; keep a copy.",
    )


def limit_confirmations(request: Request, runtime: RuntimeDep) -> None:
    limit_by_client(
        request,
        runtime,
        "confirmations",
        600,
        60,
        "Too many confirmations from this address: at most 600 a minute.",
    )


def _cached(request: Request, body: bytes, media_type: str, extra: dict[str, str] | None = None) -> Response:
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": tag,
        "Cache-Control": f"public, max-age={CACHE_S}",
        "Access-Control-Allow-Origin": "*",
        **(extra or {}),
    }
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


Since = Annotated[date | None, Query(description="First day (default: 89 days before until)")]
Until = Annotated[date | None, Query(description="Last day (default and latest: yesterday)")]


@router.get(
    "/open-data/v1/{slug}/daily.csv",
    dependencies=[Depends(limit_open_data)],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **OPEN_DATA_ANSWERS},
    operation_id="open_data_daily_csv",
)
def daily_csv(
    slug: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Daily counts per site (k-anonymised), CSV; its description is daily.json."""
    published = open_data.build(session, slug[:64], runtime.clock(), since, until)
    base = f"{runtime.settings.public_url.rstrip('/')}/open-data/v1/{published.organisation.slug}"
    return _cached(
        request,
        open_data.as_csv(published).encode(),
        "text/csv; charset=utf-8",
        {"Link": f'<{base}/daily.json>; rel="describedby"'},
    )


@router.get(
    "/open-data/v1/{slug}/daily.json",
    dependencies=[Depends(limit_open_data)],
    responses=OPEN_DATA_ANSWERS,
    operation_id="open_data_daily_json",
)
def daily_json(
    slug: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Daily counts per site (k-anonymised) with DCAT-style metadata, data dictionary and licence."""
    now = runtime.clock()
    published = open_data.build(session, slug[:64], now, since, until)
    document = open_data.as_document(published, runtime.settings.public_url, now)
    document.pop("dct:modified")  # the same data is the same document (and ETag) all day
    body = json.dumps(document, ensure_ascii=False, indent=1).encode()
    return _cached(request, body, "application/json")


async def raw_body(request: Request) -> bytes:
    """The exact bytes signed: parsing first would change them."""
    return await request.body()


@router.post(
    "/impact/v1/confirmations",
    response_model=ConfirmationResult,
    dependencies=[Depends(limit_confirmations)],
    responses={
        401: {"description": "The signature does not verify"},
        403: {"description": "Confirmations are switched off for this organisation"},
        404: {"description": "No prompt has this reference"},
        413: {"description": "The body is too large"},
        422: {"description": 'The body is not {"ref": "..."}'},
        429: {"description": "Too many requests from this address"},
    },
    # The body is read as bytes (the signature covers them exactly); the document still shows its shape.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["ref"],
                        "additionalProperties": False,
                        "properties": {"ref": {"type": "string", "minLength": 8, "maxLength": 100}},
                    }
                }
            },
        }
    },
    operation_id="confirm_prompt",
)
def confirm(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ConfirmationResult:
    """The charity's server confirms that the person behind a `nahbar_ref` completed the sign-up or
    donation: JSON `{"ref": "nr_..."}`, signed with the organisation's confirmation secret by the Standard
    Webhooks specification (webhook-id, webhook-timestamp, webhook-signature headers)."""
    headers = {key.lower(): value for key, value in request.headers.items()}
    secret = runtime.settings.secret_key.get_secret_value()
    return confirmations.confirm(session, secret, body, headers, runtime.clock())
