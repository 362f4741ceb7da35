"""/admin/invite: where an invite link leads. A form (works without JavaScript) that accepts the invite
through the same service as POST /admin/api/v1/invites/accept; the link's #token is moved into it by a
same-origin script, or pasted by hand.

Against cross-site forgery the token suffices (a forger must know it), and a cross-site POST is refused on
the browser's own word (Sec-Fetch-Site, else Origin), as on the landing page.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from server.api.deps import RuntimeDep, SessionDep
from server.api.headers import html_headers
from server.core import const
from server.core.errors import Gone, NahbarError, TooManyAttempts
from server.tenancy.endpoints import redeem_invite
from server.tenancy.service import WrongInvitePassword
from server.web.templating import language, templates
from server.web.texts import INVITE

PATH: Final = "/admin/invite"  # the path of the link POST /organisations/{org_id}/invites answers with
TOKEN_LENGTH: Final = (10, 200)
PASSWORD_MAX: Final = 1024
_HEADERS: Final = html_headers() | {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}

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
        "lang": lang,
        "t": INVITE[lang],
        "action": PATH,
        "errors": errors or {},
        "token": token,
        "done": done,
        "min_password": const.MIN_PASSWORD_LENGTH,
    }
    return templates.TemplateResponse(request, "invite.html", context, status_code=status, headers=_HEADERS)


def _input_errors(t: dict[str, str], token: str, password: str, repeat: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not token:
        errors["token"] = t["token_missing"]
    elif not TOKEN_LENGTH[0] <= len(token) <= TOKEN_LENGTH[1]:
        errors["token"] = t["token_format"]
    if not password:
        errors["password"] = t["password_missing"]
    elif len(password) > PASSWORD_MAX:
        errors["password"] = t["password_long"]
    elif password != repeat:
        errors["password_repeat"] = t["repeat_mismatch"]
    return errors


def _service_error(t: dict[str, str], error: NahbarError, window_seconds: int) -> dict[str, str]:
    """The service's refusal, next to the field it is about, in the reader's language."""
    if isinstance(error, Gone):
        return {"token": t["token_gone"]}
    if isinstance(error, WrongInvitePassword):
        return {"password": t["password_wrong"]}
    if isinstance(error, TooManyAttempts):
        return {"password": t["password_locked"].format(minutes=-(-window_seconds // 60))}
    if error.extra.get("field") == "password":  # too short for a new account
        return {"password": t["password_short"].format(n=const.MIN_PASSWORD_LENGTH)}
    return {"token": error.detail}


def _cross_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


@router.get(PATH, response_class=HTMLResponse)
def invite_form(request: Request) -> HTMLResponse:
    """The form; the token is in the link's #fragment, which the browser keeps to itself."""
    return _page(request, language(request.headers.get("accept-language")))


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
    lang = language(request.headers.get("accept-language"))
    t = INVITE[lang]
    token = token.strip()
    if _cross_site(request):
        return _page(request, lang, 403, {"token": t["refused"]}, token)
    errors = _input_errors(t, token, password, password_repeat)
    if errors:
        return _page(request, lang, 422, errors, token)
    user = redeem_invite(session, runtime, request, token, password)
    if isinstance(user, NahbarError):
        errors = _service_error(t, user, runtime.settings.login_window_seconds)
        return _page(request, lang, user.status, errors, token)
    return _page(request, lang, done=user.email)
