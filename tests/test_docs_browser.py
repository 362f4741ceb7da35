"""/docs and / in a real browser (Playwright driving Debian's /usr/bin/chromium) against a real server on a
loopback port, with every request to another host aborted: Swagger UI still renders the operations and runs
one, nothing tries to leave the server, and the CSP blocks nothing the page needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_landing_browser import assert_accessible

pytestmark = pytest.mark.browser


class Watched:
    """A page whose requests to other hosts are aborted and listed, with its console errors."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.elsewhere: list[str] = []
        self.errors: list[str] = []

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(origin + "/") or url.startswith("data:"):
                route.continue_()
            else:
                self.elsewhere.append(url)
                route.abort()

        self.page.route("**/*", route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)


@pytest.fixture
def watched(chromium, live_server) -> Iterator[Watched]:
    watched = Watched(chromium, live_server.url)
    yield watched
    watched.context.close()


def test_the_docs_render_and_run_an_operation_with_other_hosts_blocked(watched, live_server):
    page = watched.page
    answer = page.goto(f"{live_server.url}/docs")
    assert answer.status == 200
    page.wait_for_selector(".opblock", timeout=15_000)
    assert page.locator(".opblock").count() > 20
    operation = page.locator("#operations-mobile-mobile_capabilities")
    assert operation.is_visible()
    assert page.locator(".info .title").inner_text().startswith("Nahbar")

    # Try it out: the request goes from the page to this server (connect-src 'self').
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=10_000)
    assert status.inner_text().strip() == "200"
    assert '"push_channels"' in operation.locator(".live-responses-table .microlight").first.inner_text()

    assert watched.elsewhere == []
    assert [e for e in watched.errors if "Content Security Policy" in e] == []


@pytest.mark.parametrize(("language", "docs"), [("de", "API-Dokumentation"), ("en", "API documentation")])
def test_the_start_page_is_accessible_and_leads_to_the_docs(watched, live_server, language, docs):
    page = watched.page
    answer = page.goto(f"{live_server.url}/?lang={language}")
    assert answer.status == 200
    assert page.get_attribute("html", "lang") == language
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("link", name=docs).click()
    page.wait_for_selector(".opblock", timeout=15_000)
    assert watched.elsewhere == []
    assert [e for e in watched.errors if "Content Security Policy" in e] == []
