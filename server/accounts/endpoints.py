"""/admin/api/v1/auth: login and logout (session cookie + CSRF token), the caller, password, API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from server.accounts import repository, service
from server.accounts.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    LoginCreate,
    LoginPublic,
    MembershipBrief,
    MePublic,
    PasswordUpdate,
)
from server.api.deps import CurrentAdmin, RuntimeDep, SessionDep
from server.core import const
from server.core.errors import NahbarError, problem
from server.tenancy.scope import Principal

router = APIRouter(prefix="/auth", tags=["admin: accounts"])


def _me(principal: Principal) -> MePublic:
    memberships = [MembershipBrief(organisation_id=o, role=r) for o, r in sorted(principal.roles.items())]
    return MePublic(
        id=principal.user_id,
        email=principal.email,
        is_operator=principal.is_operator,
        memberships=memberships,
    )


def _secure(runtime: RuntimeDep) -> bool:
    # Secure cookies need https; plain http is only for a local dev server (NAHBAR_PUBLIC_URL=http://...).
    settings = runtime.settings
    return settings.public_url.startswith("https://") or settings.environment == "production"


@router.post(
    "/login",
    response_model=LoginPublic,
    operation_id="admin_login",
    responses={401: {"description": "Wrong e-mail or password"}, 429: {"description": "Locked out"}},
)
def login(body: LoginCreate, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Start a session: an HttpOnly session cookie plus a CSRF token for the X-CSRF-Token header."""
    client = request.client.host if request.client else "unknown"
    try:
        done = service.login(session, body.email, body.password, client, runtime.clock())
    except NahbarError as exc:
        # Answered, not raised, so that the session dependency commits the counted failure.
        answer = problem(exc.status, exc.code, exc.detail)
        if exc.status == 429:
            answer.headers["Retry-After"] = str(const.LOGIN_WINDOW_S)
        return answer
    principal = service.authenticate(
        session, bearer=None, cookie=done.session_token, csrf=None, method="GET", now=runtime.clock()
    )
    body_out = LoginPublic(user=_me(principal), csrf_token=done.csrf_token, expires_at=done.expires_at)
    answer = JSONResponse(body_out.model_dump(mode="json"))
    secure, max_age = _secure(runtime), const.SESSION_LIFETIME_S
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
    return answer


@router.post("/logout", status_code=204, operation_id="admin_logout")
def logout(principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep) -> Response:
    """End this session (an API token is revoked under /auth/tokens instead)."""
    service.logout(session, principal, runtime.clock())
    answer = Response(status_code=204)
    answer.delete_cookie(const.SESSION_COOKIE, path="/admin")
    answer.delete_cookie(const.CSRF_COOKIE, path="/admin")
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
    return [ApiTokenPublic.model_validate(t) for t in repository.tokens(principal, session)]


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
