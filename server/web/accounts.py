"""Signing in and out, the language switch, and the signed-in person's account: password and API tokens."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.accounts import service
from server.accounts.endpoints import clear_session_cookies, set_session_cookies
from server.accounts.schemas import ApiTokenCreate, PasswordUpdate
from server.api.client import client_address
from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.const import LANGUAGES
from server.core.errors import Forbidden, NahbarError, TooManyAttempts
from server.web.forms import parse
from server.web.i18n import LANGUAGE_COOKIE, N_, gettext
from server.web.pages import (
    LOGIN,
    PageRoute,
    VisitDep,
    cross_site,
    done,
    page,
    page_language,
    safe_next,
)
from server.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

WRONG_LOGIN: Final = N_("Wrong e-mail or password.")
LOCKED: Final = N_("Too many failed sign-ins. Wait %(minutes)s minutes and try again.")
WRONG_PASSWORD: Final = N_("The current password is wrong.")
YEAR_S: Final = 365 * 86_400


def _login_page(
    request: Request, lang: str, errors: dict[str, str], email: str, target: str, status: int
) -> HTMLResponse:
    context = {"errors": errors, "email": email, "next": target, "here": LOGIN}
    return render(request, "login.html", context, lang, status=status)


@router.get(LOGIN, response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The sign-in form; `next` is where to go afterwards (a page under /admin)."""
    target = safe_next(request.query_params.get("next"))
    return _login_page(request, page_language(request), {}, "", target, 200)


@router.post(LOGIN, response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_page: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    """Sign in with the admin API's own rules (lockout included); a failure is counted, then shown."""
    lang, target = page_language(request), safe_next(next_page)
    if cross_site(request):
        refused = {"email": gettext(lang, N_("Please use the form on this page."))}
        return _login_page(request, lang, refused, "", target, 403)
    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = gettext(lang, N_("Enter your e-mail address."))
    if not password:
        errors["password"] = gettext(lang, N_("Enter your password."))
    if errors:
        return _login_page(request, lang, errors, email, target, 422)
    client = client_address(request, runtime.settings.trusted_proxies)
    try:
        signed = service.login(session, email, password, client, runtime.clock(), runtime.settings)
    except NahbarError as error:  # answered, not raised: the failed attempt must be committed
        minutes = -(-runtime.settings.login_window_seconds // 60)
        message = (
            gettext(lang, LOCKED, minutes=minutes)
            if isinstance(error, TooManyAttempts)
            else gettext(lang, WRONG_LOGIN)
        )
        return _login_page(request, lang, {"password": message}, email, target, error.status)
    answer = RedirectResponse(target, status_code=303)
    set_session_cookies(answer, signed, runtime.settings)
    return answer


@router.post("/admin/logout")
def logout(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """End this session and go to the sign-in page."""
    service.logout(session, visit.principal, runtime.clock())
    answer = RedirectResponse(LOGIN, status_code=303)
    clear_session_cookies(answer)
    return answer


@router.get("/admin/language/{lang}")
def switch_language(lang: str, request: Request, runtime: RuntimeDep) -> Response:
    """Remember the chosen language (a cookie) and go back to the page it was chosen on."""
    target = safe_next(request.query_params.get("next"))
    answer = RedirectResponse(target, status_code=303)
    if lang in LANGUAGES:
        answer.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=YEAR_S,
            path="/",
            secure=runtime.settings.cookie_secure,
            httponly=True,
            samesite="lax",
        )
    return answer


def _account(visit: VisitDep, session: SessionDep, status: int = 200, **extra: Any) -> HTMLResponse:
    context: dict[str, Any] = {
        "tokens": service.tokens(session, visit.principal),
        "errors": {},
        "created": None,
        "token_form": {"name": "", "scope": "read", "days": "90"},
        "min_password": const.MIN_PASSWORD_LENGTH,
        "max_days": const.API_TOKEN_MAX_DAYS,
    } | extra
    return page(visit, "account.html", "account", context, session, status=status)


@router.get("/admin/account", response_class=HTMLResponse)
def account(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The signed-in person's e-mail, roles, password and API tokens."""
    return _account(visit, session)


@router.post("/admin/account/password", response_class=HTMLResponse)
def change_password(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """A new password; the person's other sessions end."""
    current, new = visit.form.get("current_password"), visit.form.get("new_password")
    repeat = visit.form.get("new_password_repeat")
    body = parse(PasswordUpdate, {"current_password": current, "new_password": new}, visit.lang)
    if isinstance(body, dict):
        if "new_password" in body:
            body["new_password"] = visit.t(
                N_("Choose a password of at least %(n)s characters."), n=const.MIN_PASSWORD_LENGTH
            )
        return _account(visit, session, 422, errors=body)
    if new != repeat:
        errors = {"new_password_repeat": visit.t(N_("The two passwords are not the same."))}
        return _account(visit, session, 422, errors=errors)
    try:
        service.change_password(
            session, visit.principal, body.current_password, body.new_password, runtime.clock()
        )
    except Forbidden:
        return _account(visit, session, 422, errors={"current_password": visit.t(WRONG_PASSWORD)})
    return done("/admin/account", "password")


@router.post("/admin/account/tokens", response_class=HTMLResponse)
def create_token(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """A new API token, shown on this page once."""
    form = {
        "name": visit.field("name"),
        "scope": visit.field("scope"),
        "days": visit.field("expires_in_days"),
    }
    values = {
        "name": form["name"],
        "scopes": ["read", "write"] if form["scope"] == "write" else ["read"],
        "expires_in_days": form["days"] or None,
    }
    body = parse(ApiTokenCreate, values, visit.lang)
    if isinstance(body, dict):
        return _account(visit, session, 422, errors=body, token_form=form)
    row, token = service.create_token(
        session,
        visit.principal,
        body.name,
        [s.value for s in body.scopes],
        body.expires_in_days,
        runtime.clock(),
    )
    return _account(visit, session, 201, created={"name": row.name, "token": token})


@router.post("/admin/account/tokens/{token_id}/revoke")
def revoke_token(token_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The token stops working at once."""
    service.revoke_token(session, visit.principal, token_id, runtime.clock())
    return done("/admin/account", "revoked")
