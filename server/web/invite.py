"""/admin/invite: where an invite link leads. A form (works without JavaScript) that accepts the invite
through the same service as POST /admin/api/v1/invites/accept; the link's #token is moved into it by a
same-origin script, or pasted by hand.

Against cross-site forgery the token suffices (a forger must know it), and a cross-site POST is refused on
the browser's own word (Sec-Fetch-Site, else Origin), as on the landing page.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.errors import Gone, NahbarError, TooManyAttempts
from server.tenancy.endpoints import redeem_invite
from server.tenancy.service import WrongInvitePassword
from server.web.i18n import LANGUAGE_COOKIE, N_, gettext, language_of
from server.web.pages import cross_site
from server.web.templating import render

PATH: Final = "/admin/invite"  # the path of the link POST /organisations/{org_id}/invites answers with
TOKEN_LENGTH: Final = (10, 200)
PASSWORD_MAX: Final = 1024
LOGIN_URL: Final = "/admin/login"
TOKEN_MISSING: Final = N_("Enter the invitation code.")
TOKEN_FORMAT: Final = N_("This invitation code is incomplete. Copy everything after the # in the link.")
TOKEN_GONE: Final = N_("This invitation is unknown, already used, withdrawn or expired. Ask for a new one.")
PASSWORD_MISSING: Final = N_("Enter a password.")
PASSWORD_LONG: Final = N_("The password is too long (at most 1024 characters).")
PASSWORD_SHORT: Final = N_("Choose a password of at least %(n)s characters.")
PASSWORD_WRONG: Final = N_("Your e-mail address already has an account. Enter its password.")
PASSWORD_LOCKED: Final = N_("Too many wrong passwords. Wait %(minutes)s minutes and try again.")
REPEAT_MISMATCH: Final = N_("The two passwords are not the same.")
REFUSED: Final = N_("Please use the form on this page.")

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]


def _page(
    request: Request,
    lang: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    token: str = "",
    done: str | None = None,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "action": PATH,
        "errors": errors or {},
        "token": token,
        "done": done,
        "min_password": const.MIN_PASSWORD_LENGTH,
        "login_url": LOGIN_URL,
        "here": PATH,
    }
    return render(request, "invite.html", context, lang, status=status)


def _input_errors(lang: str, token: str, password: str, repeat: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not token:
        errors["token"] = gettext(lang, TOKEN_MISSING)
    elif not TOKEN_LENGTH[0] <= len(token) <= TOKEN_LENGTH[1]:
        errors["token"] = gettext(lang, TOKEN_FORMAT)
    if not password:
        errors["password"] = gettext(lang, PASSWORD_MISSING)
    elif len(password) > PASSWORD_MAX:
        errors["password"] = gettext(lang, PASSWORD_LONG)
    elif password != repeat:
        errors["password_repeat"] = gettext(lang, REPEAT_MISMATCH)
    return errors


def _service_error(lang: str, error: NahbarError, window_seconds: int) -> dict[str, str]:
    """The service's refusal, next to the field it is about, in the reader's language."""
    if isinstance(error, Gone):
        return {"token": gettext(lang, TOKEN_GONE)}
    if isinstance(error, WrongInvitePassword):
        return {"password": gettext(lang, PASSWORD_WRONG)}
    if isinstance(error, TooManyAttempts):
        return {"password": gettext(lang, PASSWORD_LOCKED, minutes=-(-window_seconds // 60))}
    if error.extra.get("field") == "password":  # too short for a new account
        return {"password": gettext(lang, PASSWORD_SHORT, n=const.MIN_PASSWORD_LENGTH)}
    return {"token": error.detail}


def _language(request: Request) -> str:
    return language_of(
        request.cookies.get(LANGUAGE_COOKIE),
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
    )


@router.get(PATH, response_class=HTMLResponse)
def invite_form(request: Request) -> HTMLResponse:
    """The form; the token is in the link's #fragment, which the browser keeps to itself."""
    return _page(request, _language(request))


@router.post(PATH, response_class=HTMLResponse)
def accept_invite_form(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    token: FormText = "",
    password: FormText = "",
    password_repeat: FormText = "",
) -> HTMLResponse:
    """Accept the invite: a new account gets this password, an existing one proves its own."""
    lang = _language(request)
    token = token.strip()
    if cross_site(request):
        return _page(request, lang, 403, {"token": gettext(lang, REFUSED)}, token)
    errors = _input_errors(lang, token, password, password_repeat)
    if errors:
        return _page(request, lang, 422, errors, token)
    user = redeem_invite(session, runtime, request, token, password)
    if isinstance(user, NahbarError):
        errors = _service_error(lang, user, runtime.settings.login_window_seconds)
        return _page(request, lang, user.status, errors, token)
    return _page(request, lang, done=user.email)
