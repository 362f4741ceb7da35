"""`/` (a short page, German or English, linking to the API docs, the admin interface and the privacy notice)
and `/docs` (Swagger UI served wholly by this server under a CSP of its own origin, no CDN)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

import pytest

URLS = re.compile(r'(?:src|href|data-openapi-url)="([^"]*)"')


def csp_of(answer) -> dict[str, str]:
    policy = answer.headers["content-security-policy"]
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";")) if d}


def test_the_docs_page_references_this_server_only_and_every_file_is_here(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = csp_of(page)
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "an inline script: the CSP would block it"

    urls = URLS.findall(page.text)
    assert urls
    fetched = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "data":
            continue
        assert (parts.scheme, parts.netloc) == ("", ""), f"{url} is on another host"
        assert url.startswith("/")
        answer = client.get(url)
        assert answer.status_code == 200, url
        fetched[parts.path] = answer
    assert set(fetched) == {
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-init.js",
        "/openapi.json",
    }
    assert fetched["/docs/assets/swagger-ui.css"].headers["content-type"].startswith("text/css")
    bundle = fetched["/docs/assets/swagger-ui-bundle.js"]
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text[:2000]
    assert len(bundle.content) > 500_000
    init = fetched["/docs/assets/swagger-init.js"].text
    assert "SwaggerUIBundle(" in init
    assert "dataset.openapiUrl" in init
    assert "validatorUrl: null" in init
    assert fetched["/openapi.json"].json()["info"]["title"] == "Nahbar"


def test_only_the_docs_files_are_served_and_redoc_is_off(client):
    for path in (
        "/docs/assets/redoc.standalone.js",
        "/docs/assets/..%2F..%2Fpyproject.toml",
        "/docs/assets/swagger-ui.css.map",
        "/redoc",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("accept", "language"),
    [
        ("", "de"),
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, fr;q=0.9, en;q=0.5, de;q=0.3", "en"),
        ("en;q=0.2, de-AT;q=0.8", "de"),
        ("fr, it", "de"),
        ("en;q=nonsense, de;q=0.1", "de"),
    ],
)
def test_the_start_page_speaks_the_visitors_language(client, accept, language):
    page = client.get("/", headers={"Accept-Language": accept})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<html lang="{language}">' in page.text
    assert page.headers["content-language"] == language
    assert "accept-language" in page.headers["vary"].lower()
    heading = {"de": "API-Dokumentation", "en": "API documentation"}[language]
    assert heading in page.text


def test_the_start_pages_links_work_and_lead_to_the_admin_pages(client):
    for language, admin in (("de", "Verwaltung"), ("en", "Administration")):
        page = client.get(f"/?lang={language}", headers={"Accept-Language": "fr"})
        assert f'<html lang="{language}">' in page.text
        assert f'<a href="/admin">{admin}</a>' in page.text
        hrefs = [u for u in URLS.findall(page.text) if not u.startswith("data:")]
        assert {"/admin", "/docs", f"/mobile/v1/privacy?lang={language}"} <= set(hrefs)
        for href in hrefs:
            assert urlsplit(href).netloc == ""
            answer = client.get(href)  # /admin leads a visitor who is not signed in to the login page
            assert answer.status_code == 200, href
            assert answer.headers["content-type"].startswith("text/html"), href
        privacy = client.get(f"/mobile/v1/privacy?lang={language}")
        assert f'<html lang="{language}">' in privacy.text
        login = client.get("/admin", headers={"Accept-Language": language})
        assert login.url.path == "/admin/login"
        assert f'<html lang="{language}">' in login.text


def test_the_start_page_allows_its_own_style_only(client):
    page = client.get("/")
    csp = csp_of(page)
    assert csp["default-src"] == "'none'"
    assert "script-src" not in csp  # no script at all
    [style] = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert csp["style-src"] == f"'sha256-{digest}'"
    assert csp["frame-ancestors"] == "'none'"
