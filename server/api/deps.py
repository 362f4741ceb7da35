"""Request dependencies as `Annotated` aliases: the session, the runtime, the calling gateway or device."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.accounts.service import authenticate
from server.core import const
from server.core.db import session_scope
from server.core.errors import NotFound, Unauthorized
from server.core.security import hash_token
from server.policy.live import SiteRef
from server.runtime import Runtime
from server.sites.models import Gateway, Site
from server.subscribers.models import Subscriber
from server.tenancy import repository as tenancy
from server.tenancy.scope import Principal


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs a sync dependency in a worker thread, a trip for a dictionary read."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request: committed when the endpoint returns, rolled back when it raises."""
    yield from session_scope(runtime.sessions)


# scope="function": commit before the response is sent. With the default ("request") a failed commit would
# reach the client as a success, and a gateway would delete events that were never stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_gateway_bearer = HTTPBearer(auto_error=False, scheme_name="GatewayToken")
_device_bearer = HTTPBearer(auto_error=False, scheme_name="DeviceToken")
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken")
_admin_cookie = APIKeyCookie(name=const.SESSION_COOKIE, auto_error=False, scheme_name="AdminSession")


def _token(credentials: HTTPAuthorizationCredentials | None, what: str) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(f"Send the {what} token as 'Authorization: Bearer <token>'.")
    return credentials.credentials


def current_gateway(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_gateway_bearer)],
) -> Gateway:
    token = _token(credentials, "gateway")
    gateway = session.scalar(select(Gateway).where(Gateway.token_hash == hash_token(token)))
    if gateway is None or gateway.revoked_at is not None:
        raise Unauthorized("Unknown or revoked gateway token; enrol the gateway again with a new code.")
    return gateway


def current_device(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_device_bearer)],
) -> Subscriber:
    token = _token(credentials, "device")
    subscriber = session.scalar(select(Subscriber).where(Subscriber.device_token_hash == hash_token(token)))
    if subscriber is None:
        raise Unauthorized("Unknown device token; opt in again to get a new one.")
    return subscriber


@dataclass(frozen=True, slots=True)
class GatewayAtSite:
    """An authenticated gateway and its site, read in a session of its own that is closed again."""

    id: int
    last_seen_at: datetime | None
    site: SiteRef


_GATEWAY_AT_SITE = (
    select(
        Gateway.id,
        Gateway.last_seen_at,
        Gateway.revoked_at,
        Site.id,
        Site.timezone,
        Site.language,
        Site.name,
        Site.quiet_start,
        Site.quiet_end,
    )
    .join(Site, Site.id == Gateway.site_id)
    .where(Gateway.token_hash == bindparam("token_hash"))
)


GatewayCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_gateway_bearer)]
DeviceCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_device_bearer)]


def gateway_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    return _token(credentials, "gateway")


def gateway_at_site(runtime: Runtime, token: str) -> GatewayAtSite:
    """For the events endpoint, the busiest: called in the endpoint's own worker thread, holding no
    connection afterwards.

    Sync dependencies, the endpoint and FastAPI's response validation each wait for a thread of the pool;
    a request that keeps its session's connection across those hops can leave every thread waiting for a
    connection that only a thread could give back. So this reads gateway and site in one query, in a
    connection given back before it returns, and the endpoint records through the batcher's own session."""
    with runtime.engine.connect() as connection:
        row = connection.execute(_GATEWAY_AT_SITE, {"token_hash": hash_token(token)}).first()
    if row is None or row[2] is not None:
        raise Unauthorized("Unknown or revoked gateway token; enrol the gateway again with a new code.")
    return GatewayAtSite(row[0], row[1], SiteRef(row[3], row[4], row[5], row[6], (row[7], row[8])))


_DEVICE = select(Subscriber.id).where(Subscriber.device_token_hash == bindparam("token_hash"))


def current_device_id(runtime: RuntimeDep, credentials: DeviceCredentials) -> uuid.UUID:
    """The calling phone's subscriber id, read in a connection given back before this returns: for the
    sighting path, which records in the batcher's transaction and must hold nothing while it waits."""
    token = _token(credentials, "device")
    with runtime.engine.connect() as connection:
        subscriber_id = connection.execute(_DEVICE, {"token_hash": hash_token(token)}).scalar()
    if subscriber_id is None:
        raise Unauthorized("Unknown device token; opt in again to get a new one.")
    return subscriber_id


CurrentDeviceId = Annotated[uuid.UUID, Depends(current_device_id)]


CurrentGateway = Annotated[Gateway, Depends(current_gateway)]
CurrentDevice = Annotated[Subscriber, Depends(current_device)]


def current_admin(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
    cookie: Annotated[str | None, Depends(_admin_cookie)],
) -> Principal:
    """The admin API's caller, by API token or by session cookie (changes then need the CSRF header)."""
    return authenticate(
        session,
        bearer=credentials.credentials if credentials else None,
        cookie=cookie,
        csrf=request.headers.get(const.CSRF_HEADER),
        method=request.method,
        now=runtime.clock(),
    )


CurrentAdmin = Annotated[Principal, Depends(current_admin)]


def organisation_id(
    org_id: Annotated[int, Path(description="The organisation's id")],
    principal: CurrentAdmin,
    session: SessionDep,
) -> int:
    """The `{org_id}` of an admin path, once it names an organisation the caller sees: 404 otherwise.

    A role check alone lets the operator through for any number, and the route would then write rows for an
    organisation that does not exist (500) or list an empty one (200); every route under
    /organisations/{org_id} takes its id through here instead."""
    if tenancy.organisation(principal, session, org_id) is None:
        raise NotFound(
            f"No organisation has id {org_id}, or it is not yours; GET /organisations lists yours."
        )
    return org_id


OrganisationId = Annotated[int, Depends(organisation_id)]
