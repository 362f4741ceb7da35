"""/admin/api/v1/organisations/{org_id}/webhooks: endpoints, secret rotation, test events, delivery log.
Viewers read; editors configure."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from server.api.deps import CurrentAdmin, OrganisationId, RuntimeDep, SessionDep
from server.api.paging import Page, PageDep
from server.webhooks import service
from server.webhooks.schemas import (
    SecretRotation,
    WebhookAttemptPublic,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookMessagePublic,
    WebhookSecret,
)

router = APIRouter(prefix="/organisations/{org_id}/webhooks", tags=["admin: webhooks"])


@router.get("", response_model=list[WebhookEndpointPublic], operation_id="admin_list_webhooks")
def list_webhooks(
    org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep
) -> list[WebhookEndpointPublic]:
    """The organisation's webhook endpoints."""
    return service.list_endpoints(session, principal, org_id)


@router.post("", status_code=201, response_model=WebhookSecret, operation_id="admin_create_webhook")
def create_webhook(
    org_id: OrganisationId,
    body: WebhookEndpointCreate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WebhookSecret:
    """Register an endpoint for some event types; the answer shows its signing secret once (editors)."""
    allow = runtime.settings.allow_private_webhook_hosts
    return service.create_endpoint(session, principal, org_id, body, allow_private=allow, now=runtime.clock())


@router.get("/{endpoint_id}", response_model=WebhookEndpointPublic, operation_id="admin_get_webhook")
def get_webhook(
    org_id: OrganisationId, endpoint_id: int, principal: CurrentAdmin, session: SessionDep
) -> WebhookEndpointPublic:
    return service.get_endpoint(session, principal, org_id, endpoint_id)


@router.patch("/{endpoint_id}", response_model=WebhookEndpointPublic, operation_id="admin_update_webhook")
def update_webhook(
    org_id: OrganisationId,
    endpoint_id: int,
    body: WebhookEndpointUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WebhookEndpointPublic:
    """Change the URL, description, event types, or switch it off and on (editors)."""
    allow = runtime.settings.allow_private_webhook_hosts
    return service.update_endpoint(
        session, principal, org_id, endpoint_id, body, allow_private=allow, now=runtime.clock()
    )


@router.delete("/{endpoint_id}", status_code=204, operation_id="admin_delete_webhook")
def delete_webhook(
    org_id: OrganisationId,
    endpoint_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> None:
    """Delete the endpoint with its queue and log (editors)."""
    service.delete_endpoint(session, principal, org_id, endpoint_id, runtime.clock())


@router.post(
    "/{endpoint_id}/rotate-secret", response_model=WebhookSecret, operation_id="admin_rotate_webhook_secret"
)
def rotate_secret(
    org_id: OrganisationId,
    endpoint_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    body: SecretRotation | None = None,
) -> WebhookSecret:
    """A new signing secret (shown once); the old one signs too until the grace period ends (editors)."""
    grace = timedelta(hours=(body or SecretRotation()).grace_hours)
    return service.rotate_secret(session, principal, org_id, endpoint_id, grace, runtime.clock())


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=WebhookMessagePublic,
    operation_id="admin_test_webhook",
)
def send_test(
    org_id: OrganisationId,
    endpoint_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WebhookMessagePublic:
    """Queue a `webhook.test` event for this endpoint; its log shows what the receiver answered (editors)."""
    return service.send_test(session, principal, org_id, endpoint_id, runtime.clock())


@router.get(
    "/{endpoint_id}/messages",
    response_model=Page[WebhookMessagePublic],
    operation_id="admin_list_webhook_messages",
)
def list_messages(
    org_id: OrganisationId, endpoint_id: int, principal: CurrentAdmin, session: SessionDep, page: PageDep
) -> Page[WebhookMessagePublic]:
    """The events queued for this endpoint and where each stands (newest first)."""
    return service.list_messages(session, principal, org_id, endpoint_id, page)


@router.get(
    "/{endpoint_id}/attempts",
    response_model=Page[WebhookAttemptPublic],
    operation_id="admin_list_webhook_attempts",
)
def list_attempts(
    org_id: OrganisationId, endpoint_id: int, principal: CurrentAdmin, session: SessionDep, page: PageDep
) -> Page[WebhookAttemptPublic]:
    """The delivery log: every attempt with the receiver's status or the error (newest first)."""
    return service.list_attempts(session, principal, org_id, endpoint_id, page)
