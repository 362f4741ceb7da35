"""Webhooks: `enqueue` for any domain's events, inside its transaction, and the endpoints' administration.

Messages go to an outbox (WebhookMessage) committed with the event, and the sender (`sender.py`) delivers
them with retries. A payload names no person: a charity's own systems must not be able to follow someone
from one event to the next, so not even a pseudonym goes out.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from server.audit import service as audit
from server.core.addresses import why_not_public_host
from server.core.bulk import insert_rows
from server.core.const import Role
from server.core.db import utcnow
from server.core.errors import NotFound, RuleViolation
from server.core.paging import Page, PageParams, paginate
from server.core.security import KeySealer
from server.prompts.deliveries import secret_key
from server.tenancy.scope import Principal
from server.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from server.webhooks.schemas import (
    EVENT_TYPES,
    TEST_EVENT,
    WebhookAttemptPublic,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookMessagePublic,
    WebhookSecret,
)

MAX_ENDPOINTS: Final = 10  # per organisation
SECRET_BYTES: Final = 24
_SEAL_CONTEXT: Final = b"nahbar webhook signing secret v1"
_messages = cast(Table, WebhookMessage.__table__)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal(session: Session, secret: str) -> bytes:
    return KeySealer(secret_key(session)).seal(secret.encode(), _SEAL_CONTEXT)


def unseal(secret: str, sealed: bytes) -> str:
    """The signing secret, from its sealed form (`secret` is NAHBAR_SECRET_KEY)."""
    return KeySealer(secret).open(sealed, _SEAL_CONTEXT).decode()


def payload_of(event_type: str, data: Mapping[str, Any], at: datetime) -> str:
    """The body as Standard Webhooks shapes it: type, timestamp, data."""
    body = {"type": event_type, "timestamp": at.isoformat(), "data": dict(data)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def enqueue(
    session: Session,
    organisation_id: int,
    event_type: str,
    data: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> int:
    """Queue `event_type` with `data` (no personal data) for every enabled endpoint of the organisation that
    subscribed to it, in the caller's transaction; returns how many messages were queued. With `dedupe_key`,
    an endpoint gets the event once per key (a campaign's budget, once a day)."""
    at = at or utcnow()
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.organisation_id == organisation_id, WebhookEndpoint.enabled.is_(True)
        )
    ).all()
    targets = [endpoint_id for endpoint_id, types in endpoints if event_type in (types or [])]
    return _queue(session, targets, event_type, data, dedupe_key, at)


def _queue(
    session: Session,
    endpoint_ids: list[int],
    event_type: str,
    data: Mapping[str, Any],
    dedupe_key: str | None,
    at: datetime,
) -> int:
    if not endpoint_ids:
        return 0
    payload = payload_of(event_type, data, at)
    rows = [
        {
            "endpoint_id": endpoint_id,
            "message_id": "msg_" + secrets.token_urlsafe(18),
            "event_type": event_type,
            "dedupe_key": dedupe_key,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for endpoint_id in endpoint_ids
    ]
    conflict = ["endpoint_id", "event_type", "dedupe_key"] if dedupe_key is not None else None
    inserted = insert_rows(
        session.connection(), _messages, rows, returning=[_messages.c.id], conflict=conflict
    )
    return len(inserted)


# --- Administration ---------------------------------------------------------------------------------------


def check_url(url: str, *, allow_private: bool) -> str:
    """An endpoint URL the server may call: https on a public host (http too where private hosts are
    allowed, for tests); the address is checked again at every connection."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ({"https", "http"} if allow_private else {"https"}) or not parts.hostname:
        raise RuleViolation(
            "The webhook URL must start with https:// and name a host.",
            extra={"field": "url", "reason": "webhook_url_invalid"},
        )
    if parts.username or parts.password:
        raise RuleViolation("Put no user or password in the webhook URL.", extra={"field": "url"})
    if not allow_private:
        reason = why_not_public_host(parts.hostname)
        if reason is not None:
            raise RuleViolation(
                f"The webhook URL's host must be a public internet address: {reason}.",
                extra={"field": "url", "reason": "webhook_host_not_public"},
            )
    return url.strip()


def public(endpoint: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic(
        id=endpoint.id,
        organisation_id=endpoint.organisation_id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types or []),
        enabled=endpoint.enabled,
        previous_secret_valid_until=endpoint.previous_valid_until,
        created_at=endpoint.created_at,
        version=endpoint.version,
    )


def _audit_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return public(endpoint).model_dump(mode="json", exclude={"created_at"})


def _endpoint(
    session: Session, principal: Principal, organisation_id: int, endpoint_id: int
) -> WebhookEndpoint:
    principal.require(organisation_id, Role.VIEWER)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.organisation_id != organisation_id:
        raise NotFound(
            f"No webhook endpoint {endpoint_id} in this organisation; GET .../webhooks lists them."
        )
    return endpoint


def list_endpoints(
    session: Session, principal: Principal, organisation_id: int
) -> list[WebhookEndpointPublic]:
    principal.require(organisation_id, Role.VIEWER)
    found = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.organisation_id == organisation_id)
        .order_by(WebhookEndpoint.id)
    )
    return [public(endpoint) for endpoint in found]


def get_endpoint(
    session: Session, principal: Principal, organisation_id: int, endpoint_id: int
) -> WebhookEndpointPublic:
    return public(_endpoint(session, principal, organisation_id, endpoint_id))


def create_endpoint(
    session: Session,
    principal: Principal,
    organisation_id: int,
    body: WebhookEndpointCreate,
    *,
    allow_private: bool,
    now: datetime,
) -> WebhookSecret:
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    principal.require(organisation_id, Role.EDITOR)
    count = session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.organisation_id == organisation_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise RuleViolation(f"At most {MAX_ENDPOINTS} webhook endpoints per organisation; delete one first.")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        organisation_id=organisation_id,
        url=check_url(body.url, allow_private=allow_private),
        description=body.description,
        event_types=sorted(set(body.event_types), key=EVENT_TYPES.index),
        enabled=True,
        secret_sealed=seal(session, secret),
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session,
        principal,
        "webhook.create",
        "webhook_endpoint",
        endpoint.id,
        organisation_id,
        None,
        _audit_view(endpoint),
        now,
    )
    return WebhookSecret(endpoint=public(endpoint), secret=secret)


def update_endpoint(
    session: Session,
    principal: Principal,
    organisation_id: int,
    endpoint_id: int,
    body: WebhookEndpointUpdate,
    *,
    allow_private: bool,
    now: datetime,
) -> WebhookEndpointPublic:
    endpoint = _endpoint(session, principal, organisation_id, endpoint_id)
    principal.require(organisation_id, Role.EDITOR)
    before = _audit_view(endpoint)
    changes = body.model_dump(exclude_unset=True)
    for required in ("url", "event_types", "enabled"):
        if required in changes and changes[required] is None:
            raise RuleViolation(f"{required} cannot be empty.", extra={"field": required})
    if "url" in changes:
        endpoint.url = check_url(changes["url"], allow_private=allow_private)
    if "description" in changes:
        endpoint.description = changes["description"]
    if "event_types" in changes:
        endpoint.event_types = sorted(set(changes["event_types"]), key=EVENT_TYPES.index)
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
    endpoint.version += 1
    session.flush()
    audit.record(
        session,
        principal,
        "webhook.update",
        "webhook_endpoint",
        endpoint.id,
        organisation_id,
        before,
        _audit_view(endpoint),
        now,
    )
    return public(endpoint)


def delete_endpoint(
    session: Session, principal: Principal, organisation_id: int, endpoint_id: int, now: datetime
) -> None:
    endpoint = _endpoint(session, principal, organisation_id, endpoint_id)
    principal.require(organisation_id, Role.EDITOR)
    before = _audit_view(endpoint)
    session.delete(endpoint)
    session.flush()
    audit.record(
        session,
        principal,
        "webhook.delete",
        "webhook_endpoint",
        endpoint_id,
        organisation_id,
        before,
        None,
        now,
    )


def rotate_secret(
    session: Session,
    principal: Principal,
    organisation_id: int,
    endpoint_id: int,
    grace: timedelta,
    now: datetime,
) -> WebhookSecret:
    """A new signing secret; the old one still signs (a second signature) until the grace period ends, so
    the receiver can switch without losing a message."""
    endpoint = _endpoint(session, principal, organisation_id, endpoint_id)
    principal.require(organisation_id, Role.EDITOR)
    secret = new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed if grace > timedelta(0) else None
    endpoint.previous_valid_until = now + grace if grace > timedelta(0) else None
    endpoint.secret_sealed = seal(session, secret)
    endpoint.version += 1
    session.flush()
    audit.record(
        session,
        principal,
        "webhook.rotate_secret",
        "webhook_endpoint",
        endpoint.id,
        organisation_id,
        None,
        {
            "previous_valid_until": endpoint.previous_valid_until.isoformat()
            if endpoint.previous_valid_until
            else None
        },
        now,
    )
    return WebhookSecret(endpoint=public(endpoint), secret=secret)


def send_test(
    session: Session, principal: Principal, organisation_id: int, endpoint_id: int, now: datetime
) -> WebhookMessagePublic:
    """Queue a `webhook.test` event for this endpoint alone (even if disabled for other events)."""
    endpoint = _endpoint(session, principal, organisation_id, endpoint_id)
    principal.require(organisation_id, Role.EDITOR)
    data = {
        "organisation_id": organisation_id,
        "endpoint_id": endpoint.id,
        "note": "a test event from Nahbar",
    }
    _queue(session, [endpoint.id], TEST_EVENT, data, None, now)
    message = session.scalars(
        select(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.event_type == TEST_EVENT)
        .order_by(WebhookMessage.id.desc())
        .limit(1)
    ).one()
    return WebhookMessagePublic.model_validate(message)


def list_messages(
    session: Session, principal: Principal, organisation_id: int, endpoint_id: int, page: PageParams
) -> Page[WebhookMessagePublic]:
    """The events queued for one endpoint, newest first."""
    endpoint = _endpoint(session, principal, organisation_id, endpoint_id)
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
    rows, total = paginate(session, query, page, {"id": WebhookMessage.id}, WebhookMessage.id.desc())
    items = [WebhookMessagePublic.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def list_attempts(
    session: Session, principal: Principal, organisation_id: int, endpoint_id: int, page: PageParams
) -> Page[WebhookAttemptPublic]:
    """The delivery log of one endpoint, newest first."""
    endpoint = _endpoint(session, principal, organisation_id, endpoint_id)
    query = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id)
    rows, total = paginate(session, query, page, {"id": WebhookAttempt.id}, WebhookAttempt.id.desc())
    items = [WebhookAttemptPublic.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
