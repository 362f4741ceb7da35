"""What every admin page shares: who looks (the admin API's own authentication, by the session cookie, with
the CSRF token from the form on a change), in which language, and how a refusal of the domain becomes a page.

A page signs in exactly as the admin API does (`accounts.service.authenticate`): the session cookie, and for
every POST the CSRF token, which the pages carry in a hidden form field instead of a header. API tokens are
for scripts and are not accepted here. Refusals are the domain's typed errors: not signed in sends the
browser to the login page; 403 and 404 are pages in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from server.accounts.service import authenticate
from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.const import Role
from server.core.errors import CsrfFailed, Forbidden, NahbarError, NotFound, Unauthorized
from server.tenancy import service as tenancy
from server.tenancy.scope import Principal
from server.web.i18n import LANGUAGE_COOKIE, N_, gettext, language_of
from server.web.templating import render

LOGIN: Final = "/admin/login"
HOME: Final = "/admin"


def page_language(request: Request) -> str:
    return language_of(
        request.cookies.get(LANGUAGE_COOKIE),
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
    )


def safe_next(target: str | None, default: str = HOME) -> str:
    """A path on these pages to go back to; anything else (another host, //, a scheme) is the overview."""
    if not target:
        return default
    parts = urlsplit(target)
    ours = parts.path.startswith(("/admin", "/site/"))
    if parts.scheme or parts.netloc or not ours or target.startswith("//"):
        return default
    return target


def cross_site(request: Request) -> bool:
    """A form posted from another site, on the browser's own word (Sec-Fetch-Site, else Origin): the forms
    that need no session (sign-in, invite) refuse it, so no other site can sign a visitor in as someone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


def login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN}?next={quote(here, safe='')}", status_code=303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    lang = page_language(request)
    titles = {
        403: N_("Not allowed"),
        404: N_("Not found"),
        409: N_("Not possible now"),
        422: N_("Not possible"),
    }
    title = gettext(lang, titles.get(status, N_("Something went wrong")))
    context = {"title": title, "message": message, "here": request.url.path}
    return render(request, "error.html", context, lang, status=status)


NOT_YOURS: Final = N_(
    "There is nothing here, or it belongs to an organisation you are not a member of. Check the address, "
    "or go back to the overview."
)
NOT_ALLOWED: Final = N_(
    "Your role does not allow this. Viewers see everything and change nothing; ask an owner of the "
    "organisation for the editor or owner role."
)
STALE_FORM: Final = N_(
    "This form was older than your sign-in, or came from another site. Nothing was changed; please try again."
)


def refusal(request: Request, error: NahbarError) -> Response:
    """A domain refusal as the browser should see it."""
    lang = page_language(request)
    if isinstance(error, Unauthorized):
        return login_redirect(request)
    if isinstance(error, CsrfFailed):
        return error_page(request, 403, gettext(lang, STALE_FORM))
    if isinstance(error, Forbidden):
        return error_page(request, 403, gettext(lang, NOT_ALLOWED))
    if isinstance(error, NotFound):
        return error_page(request, 404, gettext(lang, NOT_YOURS))
    return error_page(request, error.status, error.detail)


class PageRoute(APIRoute):
    """An admin page: the domain's refusals become pages (or the login), a malformed id a 404 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except NahbarError as error:
                return refusal(request, error)
            except RequestValidationError:
                return error_page(request, 404, gettext(page_language(request), NOT_YOURS))

        return page


async def posted_form(request: Request) -> FormData:
    """The form a POST sends (read once; an empty one for GET)."""
    if request.method != "POST":
        return FormData()
    return await request.form()


Posted = Annotated[FormData, Depends(posted_form)]


@dataclass(frozen=True, slots=True)
class Visit:
    """Who looks at a page, in which language, with the CSRF token the page's forms carry."""

    principal: Principal
    lang: str
    csrf: str
    request: Request
    form: FormData

    def t(self, message: str, **values: object) -> str:
        return gettext(self.lang, message, **values)

    def can(self, organisation_id: int, minimum: Role = Role.EDITOR) -> bool:
        try:
            self.principal.require(organisation_id, minimum)
        except NahbarError:
            return False
        return True

    def field(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def fields(self, name: str) -> list[str]:
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    def offset(self) -> int:
        """Where a list's page starts (?offset=), 0 when it says nothing sensible."""
        raw = self.request.query_params.get("offset", "0")
        return min(int(raw), 10**9) if raw.isdigit() else 0

    def query(self, name: str, limit: int = 100) -> str:
        return self.request.query_params.get(name, "").strip()[:limit]

    def if_match(self) -> str | None:
        """The ETag of the version the form was read at (its hidden `version` field)."""
        version = self.field("version")
        return f'"v{version}"' if version.isdigit() else None


def current_visit(request: Request, session: SessionDep, runtime: RuntimeDep, form: Posted) -> Visit:
    """The signed-in admin (any page but login needs one); a POST must carry the session's CSRF token."""
    csrf_field = form.get("csrf_token")
    principal = authenticate(
        session,
        bearer=None,
        cookie=request.cookies.get(const.SESSION_COOKIE),
        csrf=csrf_field if isinstance(csrf_field, str) else None,
        method=request.method,
        now=runtime.clock(),
    )
    csrf = request.cookies.get(const.CSRF_COOKIE, "")
    return Visit(principal, page_language(request), csrf, request, form)


VisitDep = Annotated[Visit, Depends(current_visit)]


def chosen_organisation(visit: Visit, session: SessionDep) -> int | None:
    """The ?organisation_id= a list or form is narrowed to, once it names one of the person's (else 404)."""
    raw = visit.query("organisation_id", 20)
    if not raw.isdigit():
        return None
    tenancy.visible_organisation(visit.principal, session, int(raw))
    return int(raw)


def page(
    visit: Visit,
    name: str,
    section: str,
    context: Mapping[str, Any],
    session: SessionDep | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """A signed-in page: the navigation, the CSRF token for its forms, and a notice while one of the
    reader's organisations is suspended."""
    suspended = (
        [o.name for o in tenancy.suspended_organisations(visit.principal, session)]
        if session is not None and not visit.principal.is_operator
        else []
    )
    request = visit.request
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    base = {
        "me": visit.principal,
        "csrf": visit.csrf,
        "section": section,
        "here": here,
        "suspended": suspended,
        "flash": _flash(visit),
    }
    return render(request, name, base | dict(context), visit.lang, status=status)


FLASHES: Final = {
    "saved": N_("Saved."),
    "created": N_("Created."),
    "revoked": N_("Revoked."),
    "removed": N_("Removed."),
    "password": N_("Your password is changed. Your other sessions have ended."),
    "activate": N_("The campaign runs."),
    "resume": N_("The campaign runs again."),
    "pause": N_("The campaign is paused: nobody is asked until you resume it."),
    "end": N_("The campaign has ended."),
    "sent": N_("The test send is on its way to the test phone."),
    "test_queued": N_("The test event is queued. The delivery log below shows what the receiver answered."),
    "suspended": N_("The organisation is suspended."),
    "unsuspended": N_("The suspension is lifted."),
    "disabled": N_("The account is disabled; its sessions and API tokens have ended."),
    "enabled": N_("The account can sign in again."),
}


def _flash(visit: Visit) -> str | None:
    """The outcome of the change that redirected here (?done=...), from a fixed list: no text from the URL."""
    key = visit.request.query_params.get("done")
    return visit.t(FLASHES[key]) if key in FLASHES else None


def done(url: str, what: str) -> RedirectResponse:
    """After a change, the page to see it on (POST, redirect, GET), saying what happened."""
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{joiner}done={what}", status_code=303)
