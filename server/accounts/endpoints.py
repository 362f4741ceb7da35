"""/admin/api/v1/auth: login and logout (session cookie + CSRF token), the caller, password, API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from server.accounts import repository, service
from server.accounts.schemas import (
    AdminUserPublic,
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    LoginCreate,
    LoginPublic,
    MembershipBrief,
    MePublic,
    PasswordUpdate,
)
from server.api.client import client_address
from server.api.deps import CurrentAdmin, RuntimeDep, SessionDep
from server.api.paging import Page, PageDep
from server.core import const, metrics
from server.core.config import Settings
from server.core.const import Role
from server.core.errors import NahbarError, problem
from server.tenancy.models import AdminUser
from server.tenancy.scope import Principal

router = APIRouter(prefix="/auth", tags=["admin: accounts"])
users_router = APIRouter(prefix="/users", tags=["admin: users"])


def _me(principal: Principal) -> MePublic:
    memberships = [MembershipBrief(organisation_id=o, role=r) for o, r in sorted(principal.roles.items())]
    return MePublic(
        id=principal.user_id,
        email=principal.email,
        is_operator=principal.is_operator,
        memberships=memberships,
    )


@router.post(
    "/login",
    response_model=LoginPublic,
    operation_id="admin_login",
    responses={401: {"description": "Wrong e-mail or password"}, 429: {"description": "Locked out"}},
)
def login(body: LoginCreate, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Start a session: an HttpOnly session cookie plus a CSRF token for the X-CSRF-Token header."""
    client = client_address(request, runtime.settings.trusted_proxies)
    try:
        done = service.login(session, body.email, body.password, client, runtime.clock(), runtime.settings)
    except NahbarError as exc:
        # Answered, not raised, so that the session dependency commits the counted failure.
        answer = problem(exc.status, exc.code, exc.detail)
        if exc.status == 429:
            answer.headers["Retry-After"] = str(runtime.settings.login_window_seconds)
            metrics.RATE_LIMITED.labels("login").inc()
        return answer
    principal = service.authenticate(
        session, bearer=None, cookie=done.session_token, csrf=None, method="GET", now=runtime.clock()
    )
    body_out = LoginPublic(user=_me(principal), csrf_token=done.csrf_token, expires_at=done.expires_at)
    answer = JSONResponse(body_out.model_dump(mode="json"))
    set_session_cookies(answer, done, runtime.settings)
    return answer


def set_session_cookies(answer: Response, done: service.LoggedIn, settings: Settings) -> None:
    """The session cookie (HttpOnly) and the CSRF token's (readable), for the API and the pages alike."""
    secure, max_age = settings.cookie_secure, settings.session_lifetime_seconds
    answer.set_cookie(
        const.SESSION_COOKIE,
        done.session_token,
        max_age=max_age,
        path="/admin",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    answer.set_cookie(
        const.CSRF_COOKIE,
        done.csrf_token,
        max_age=max_age,
        path="/admin",
        secure=secure,
        httponly=False,
        samesite="lax",
    )


def clear_session_cookies(answer: Response) -> None:
    answer.delete_cookie(const.SESSION_COOKIE, path="/admin")
    answer.delete_cookie(const.CSRF_COOKIE, path="/admin")


@router.post("/logout", status_code=204, operation_id="admin_logout")
def logout(principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep) -> Response:
    """End this session (an API token is revoked under /auth/tokens instead)."""
    service.logout(session, principal, runtime.clock())
    answer = Response(status_code=204)
    clear_session_cookies(answer)
    return answer


@router.get("/me", response_model=MePublic, operation_id="admin_me")
def me(principal: CurrentAdmin) -> MePublic:
    """Who is calling, and their role in each organisation."""
    return _me(principal)


@router.post("/password", status_code=204, operation_id="admin_change_password")
def change_password(
    body: PasswordUpdate, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Change the caller's password; every other session of theirs ends."""
    service.change_password(session, principal, body.current_password, body.new_password, runtime.clock())
    return Response(status_code=204)


@router.get("/tokens", response_model=list[ApiTokenPublic], operation_id="admin_list_tokens")
def list_tokens(principal: CurrentAdmin, session: SessionDep) -> list[ApiTokenPublic]:
    """The caller's API tokens (never their values)."""
    return [ApiTokenPublic.model_validate(t) for t in service.tokens(session, principal)]


@router.post("/tokens", status_code=201, response_model=ApiTokenCreated, operation_id="admin_create_token")
def create_token(
    body: ApiTokenCreate, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> ApiTokenCreated:
    """Create a scoped API token; its value is in this answer only."""
    row, token = service.create_token(
        session, principal, body.name, [s.value for s in body.scopes], body.expires_in_days, runtime.clock()
    )
    return ApiTokenCreated(**ApiTokenPublic.model_validate(row).model_dump(), token=token)


@router.delete("/tokens/{token_id}", response_model=ApiTokenPublic, operation_id="admin_revoke_token")
def revoke_token(
    token_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> ApiTokenPublic:
    """Revoke one of the caller's tokens; it stops working at once."""
    return ApiTokenPublic.model_validate(service.revoke_token(session, principal, token_id, runtime.clock()))


def _user(user: AdminUser, roles: dict[int, Role]) -> AdminUserPublic:
    return AdminUserPublic(
        id=user.id,
        email=user.email,
        is_operator=user.is_operator,
        created_at=user.created_at,
        disabled_at=user.disabled_at,
        memberships=[MembershipBrief(organisation_id=o, role=r) for o, r in sorted(roles.items())],
    )


@users_router.get("", response_model=Page[AdminUserPublic], operation_id="admin_list_users")
def list_users(
    principal: CurrentAdmin,
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100, description="Part of the e-mail address")] = None,
    disabled: Annotated[bool | None, Query(description="Only disabled (true) or active (false) ones")] = None,
) -> Page[AdminUserPublic]:
    """Every admin account with its memberships (operator only)."""
    rows, total, roles = service.list_users(session, principal, page, q, disabled)
    items = [_user(u, roles[u.id]) for u in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@users_router.post(
    "/{user_id}/disable",
    response_model=AdminUserPublic,
    operation_id="admin_disable_user",
    responses={409: {"description": "Operators cannot disable themselves"}},
)
def disable_user(
    user_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> AdminUserPublic:
    """Disable an account (operator only): it cannot log in, and its sessions and API tokens end at once."""
    user = service.set_disabled(session, principal, user_id, True, runtime.clock())
    return _user(user, repository.roles_of(session, user.id))


@users_router.post("/{user_id}/enable", response_model=AdminUserPublic, operation_id="admin_enable_user")
def enable_user(
    user_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> AdminUserPublic:
    """Let a disabled account log in again (operator only); its old sessions and tokens stay ended."""
    user = service.set_disabled(session, principal, user_id, False, runtime.clock())
    return _user(user, repository.roles_of(session, user.id))
