"""Every HTML page the server renders refuses to be framed, sends no Referer and is not type-sniffed."""

from __future__ import annotations

from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from server.app import create_app
from server.core.config import Settings
from server.prompts.tokens import landing_token
from tests.conftest import TEST_SECRET, Clock
from tests.delivery_world import passer_by, the_decision, walk_past


def directives(csp: str) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in csp.split(";") if part.strip())
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts}


def assert_guarded(answer, *, self_only: bool = True) -> None:
    assert answer.headers["content-type"].startswith("text/html"), answer.url
    assert answer.headers["x-frame-options"] == "DENY", answer.url
    assert answer.headers["referrer-policy"] == "no-referrer", answer.url
    assert answer.headers["x-content-type-options"] == "nosniff", answer.url
    policy = directives(answer.headers["content-security-policy"])
    assert policy["frame-ancestors"] == "'none'", answer.url
    if self_only:  # the page loads nothing from another host
        assert policy["default-src"] in {"'self'", "'none'"}, answer.url


def test_the_phone_pages_and_the_landing_page_cannot_be_framed(client, session, clock: Clock):
    for path in ("/mobile/v1/consent/2026-11?lang=de", "/mobile/v1/consent/2026-11?lang=en"):
        assert_guarded(client.get(path))
    assert_guarded(client.get("/mobile/v1/privacy?lang=en"))
    _charity, gateway, phone = passer_by(client, session, clock(), language="en")
    walk_past(client, gateway, phone, clock())
    token = landing_token(TEST_SECRET, the_decision(session).id)
    page = client.get(f"/p/{token}")
    assert page.status_code == 200
    assert_guarded(page)
    assert_guarded(client.get("/p/" + "x" * 43))  # the friendly 404 page
    refused = client.post(
        f"/p/{token}", data={"kind": "dismissed"}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert_guarded(refused)


def test_the_api_docs_and_the_start_page_cannot_be_framed_either(client):
    for path in ("/docs", "/"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert_guarded(answer)  # Swagger UI's files are served by this server


def test_any_html_answer_gets_the_headers_and_json_gets_nosniff(settings: Settings, clock: Clock):
    app = create_app(settings, clock=clock)

    @app.get("/a-page-nobody-guarded")
    def page() -> HTMLResponse:
        return HTMLResponse("<!DOCTYPE html><title>x</title>")

    @app.get("/a-page-with-its-own-policy")
    def own() -> HTMLResponse:
        return HTMLResponse("<p>x</p>", headers={"Content-Security-Policy": "default-src 'none'"})

    with TestClient(app) as client:
        assert_guarded(client.get("/a-page-nobody-guarded"), self_only=False)
        own_policy = client.get("/a-page-with-its-own-policy")
        assert_guarded(own_policy)
        assert directives(own_policy.headers["content-security-policy"])["default-src"] == "'none'"
        health = client.get("/healthz")
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "x-frame-options" not in health.headers
