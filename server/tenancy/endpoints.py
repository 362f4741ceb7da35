"""/admin/api/v1: organisations, their memberships and invites, and the platform settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from server.accounts import repository as accounts
from server.accounts.repository import record_attempt, roles_of
from server.accounts.schemas import MembershipBrief, MePublic
from server.api.client import client_address
from server.api.deps import CurrentAdmin, OrganisationId, RuntimeDep, SessionDep
from server.api.etag import IfMatch, set_etag
from server.api.paging import Page, PageDep
from server.core.const import Role
from server.core.errors import NahbarError, problem
from server.runtime import Runtime
from server.tenancy import service
from server.tenancy.models import AdminUser, Membership
from server.tenancy.schemas import (
    InviteAccept,
    InviteCreate,
    InviteCreated,
    InvitePublic,
    MembershipPublic,
    MembershipUpdate,
    OrganisationCreate,
    OrganisationPublic,
    OrganisationUpdate,
    PlatformSettingsPublic,
    PlatformSettingsUpdate,
)

router = APIRouter(tags=["admin: organisations"])


@router.get(
    "/organisations", response_model=Page[OrganisationPublic], operation_id="admin_list_organisations"
)
def list_organisations(
    principal: CurrentAdmin,
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100, description="Part of the name or slug")] = None,
) -> Page[OrganisationPublic]:
    """The organisations the caller belongs to (all of them, for the operator)."""
    rows, total = service.list_organisations(principal, session, page, q)
    items = [OrganisationPublic.model_validate(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/organisations",
    status_code=201,
    response_model=OrganisationPublic,
    operation_id="admin_create_organisation",
    responses={409: {"description": "The slug is taken (conflict)"}},
)
def create_organisation(
    body: OrganisationCreate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> OrganisationPublic:
    """Onboard a charity (operator only); then invite its first owner."""
    org = service.create_organisation(session, principal, body, runtime.clock())
    set_etag(response, org.version)
    return OrganisationPublic.model_validate(org)


@router.get(
    "/organisations/{org_id}", response_model=OrganisationPublic, operation_id="admin_get_organisation"
)
def get_organisation(
    org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep, response: Response
) -> OrganisationPublic:
    """One organisation, with its ETag for a later update."""
    org = service.visible_organisation(principal, session, org_id)
    set_etag(response, org.version)
    return OrganisationPublic.model_validate(org)


@router.patch(
    "/organisations/{org_id}", response_model=OrganisationPublic, operation_id="admin_update_organisation"
)
def update_organisation(
    org_id: OrganisationId,
    body: OrganisationUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> OrganisationPublic:
    """Change name, privacy contact or stricter caps (owners); needs If-Match."""
    org = service.update_organisation(session, principal, org_id, body, if_match, runtime.clock())
    set_etag(response, org.version)
    return OrganisationPublic.model_validate(org)


def _suspension(suspended: bool) -> Callable[..., OrganisationPublic]:
    def change(
        org_id: OrganisationId,
        principal: CurrentAdmin,
        session: SessionDep,
        runtime: RuntimeDep,
        response: Response,
        if_match: IfMatch = None,
    ) -> OrganisationPublic:
        org = service.set_suspended(session, principal, org_id, suspended, if_match, runtime.clock())
        set_etag(response, org.version)
        return OrganisationPublic.model_validate(org)

    change.__doc__ = (
        "Suspend an organisation (operator only); needs If-Match. Its campaigns stop running at once and "
        "cannot start; its admins see a notice."
        if suspended
        else "Lift a suspension (operator only); needs If-Match. Its active campaigns run again."
    )
    return change


for _suspended, _name in ((True, "suspend"), (False, "unsuspend")):
    router.add_api_route(
        f"/organisations/{{org_id}}/{_name}",
        _suspension(_suspended),
        methods=["POST"],
        response_model=OrganisationPublic,
        operation_id=f"admin_{_name}_organisation",
        summary=f"{_name.capitalize()} an organisation",
    )


def _member(m: Membership, email: str) -> MembershipPublic:
    return MembershipPublic(
        id=m.id,
        organisation_id=m.organisation_id,
        user_id=m.user_id,
        email=email,
        role=Role(m.role),
        created_at=m.created_at,
        version=m.version,
    )


def _member_of(session: SessionDep, m: Membership) -> MembershipPublic:
    user = accounts.user(session, m.user_id)
    return _member(m, user.email if user else "")


@router.get(
    "/organisations/{org_id}/members",
    response_model=list[MembershipPublic],
    operation_id="admin_list_members",
)
def list_members(
    org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep
) -> list[MembershipPublic]:
    """Who belongs to the organisation, with which role."""
    return [_member(m, email) for m, email in service.members(principal, session, org_id)]


@router.get(
    "/organisations/{org_id}/members/{membership_id}",
    response_model=MembershipPublic,
    operation_id="admin_get_member",
)
def get_member(
    org_id: OrganisationId,
    membership_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    response: Response,
) -> MembershipPublic:
    """One membership, with its ETag for a role change or removal."""
    member = service.visible_member(principal, session, org_id, membership_id)
    set_etag(response, member.version)
    return _member_of(session, member)


@router.patch(
    "/organisations/{org_id}/members/{membership_id}",
    response_model=MembershipPublic,
    operation_id="admin_update_member",
    responses={409: {"description": "The organisation's last owner cannot be demoted (conflict)"}},
)
def update_member(
    org_id: OrganisationId,
    membership_id: int,
    body: MembershipUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> MembershipPublic:
    """Change a member's role (owners); needs If-Match. The last owner cannot be demoted."""
    member = service.change_role(
        session, principal, org_id, membership_id, body.role, if_match, runtime.clock()
    )
    set_etag(response, member.version)
    return _member_of(session, member)


@router.delete(
    "/organisations/{org_id}/members/{membership_id}",
    status_code=204,
    operation_id="admin_remove_member",
    responses={409: {"description": "The organisation's last owner cannot be removed (conflict)"}},
)
def remove_member(
    org_id: OrganisationId,
    membership_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    if_match: IfMatch = None,
) -> Response:
    """Remove a member (owners); needs If-Match. The last owner cannot be removed."""
    service.remove_member(session, principal, org_id, membership_id, if_match, runtime.clock())
    return Response(status_code=204)


@router.get(
    "/organisations/{org_id}/invites", response_model=list[InvitePublic], operation_id="admin_list_invites"
)
def list_invites(org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep) -> list[InvitePublic]:
    """Invites sent by the organisation (owners)."""
    return [InvitePublic.model_validate(i) for i in service.invites(principal, session, org_id)]


@router.post(
    "/organisations/{org_id}/invites",
    status_code=201,
    response_model=InviteCreated,
    operation_id="admin_create_invite",
)
def create_invite(
    org_id: OrganisationId,
    body: InviteCreate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> InviteCreated:
    """Invite someone by a one-time link (owners); the link is in this answer only."""
    invite, token = service.create_invite(session, principal, org_id, body.email, body.role, runtime.clock())
    url = f"{runtime.settings.public_url.rstrip('/')}/admin/invite#{token}"
    return InviteCreated(**InvitePublic.model_validate(invite).model_dump(), token=token, url=url)


@router.delete(
    "/organisations/{org_id}/invites/{invite_id}",
    response_model=InvitePublic,
    operation_id="admin_revoke_invite",
)
def revoke_invite(
    org_id: OrganisationId, invite_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> InvitePublic:
    """Withdraw an unused invite (owners)."""
    return InvitePublic.model_validate(
        service.revoke_invite(session, principal, org_id, invite_id, runtime.clock())
    )


def redeem_invite(
    session: Session, runtime: Runtime, request: Request, token: str, password: str
) -> AdminUser | NahbarError:
    """Accept an invite (this API and the /admin/invite page). A failure is returned, not raised, so that the
    request's transaction still commits what must stay: a wrong password counted towards the lockout."""
    now = runtime.clock()
    try:
        user, _member = service.accept_invite(session, token, password, now, runtime.settings)
    except NahbarError as exc:
        # Undo the claim on the invite, but keep a wrong password counted towards the account's lockout.
        session.rollback()
        if isinstance(exc, service.WrongInvitePassword):
            client = client_address(request, runtime.settings.trusted_proxies)
            record_attempt(session, exc.email, client, False, now)
        return exc
    return user


@router.post(
    "/invites/accept",
    response_model=MePublic,
    operation_id="admin_accept_invite",
    responses={
        403: {"description": "The invite is for an existing account; its password is needed"},
        410: {"description": "Unknown, used, revoked or expired invite"},
        429: {"description": "Too many failed passwords for that account"},
    },
)
def accept_invite(body: InviteAccept, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Redeem a one-time invite (no login needed: the token is the credential); then log in."""
    user = redeem_invite(session, runtime, request, body.token, body.password)
    if isinstance(user, NahbarError):
        return problem(user.status, user.code, user.detail, **user.extra)
    roles = roles_of(session, user.id)
    me = MePublic(
        id=user.id,
        email=user.email,
        is_operator=user.is_operator,
        memberships=[MembershipBrief(organisation_id=o, role=r) for o, r in sorted(roles.items())],
    )
    return JSONResponse(me.model_dump(mode="json"))


@router.get("/platform/settings", response_model=PlatformSettingsPublic, operation_id="admin_get_platform")
def get_platform(principal: CurrentAdmin, session: SessionDep, response: Response) -> PlatformSettingsPublic:
    """The platform maxima every charity must stay within (readable by every admin), with its ETag."""
    row = service.platform_settings(session)
    set_etag(response, row.version)
    return PlatformSettingsPublic.model_validate(row)


@router.patch(
    "/platform/settings", response_model=PlatformSettingsPublic, operation_id="admin_update_platform"
)
def update_platform(
    body: PlatformSettingsUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> PlatformSettingsPublic:
    """Change the platform maxima and retention (operator only); needs If-Match."""
    row = service.update_platform(session, principal, body, if_match, runtime.clock())
    set_etag(response, row.version)
    return PlatformSettingsPublic.model_validate(row)
