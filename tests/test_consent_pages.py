"""The public pages the app opens in a web view: consent text (versioned) and privacy notice, DE and EN."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from server.subscribers.consent import CONSENT_TEXTS, CURRENT_CONSENT_VERSION

VOID = {"meta", "br", "img", "link", "input", "hr"}


class Structure(HTMLParser):
    """Checks that tags nest and close properly, and collects the html lang and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.lang: str | None = None
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Structure:
    assert html.startswith("<!DOCTYPE html>")
    page = Structure()
    page.feed(html)
    page.close()
    assert page.open == [], f"unclosed: {page.open}"
    assert page.tags[:3] == ["html", "head", "meta"]
    assert {"title", "body", "main", "h1"} <= set(page.tags)
    assert "script" not in page.tags
    return page


def test_the_consent_versions_name_the_current_one(client):
    answer = client.get("/mobile/v1/consent")
    assert answer.status_code == 200
    body = answer.json()
    assert body["current"] == CURRENT_CONSENT_VERSION
    assert [v["version"] for v in body["versions"]] == sorted(CONSENT_TEXTS)
    current = next(v for v in body["versions"] if v["version"] == CURRENT_CONSENT_VERSION)
    assert current["languages"] == ["de", "en"]
    for url in current["urls"].values():
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("de", ["Einwilligung", "Ehrenamt", "widerrufen", "Art. 9 Abs. 2", "Datenschutzhinweise"]),
        ("en", ["consent", "volunteering", "withdraw", "Art. 9(2)(a)", "Privacy notice"]),
    ],
)
def test_the_consent_text_in_both_languages(client, lang, words):
    answer = client.get(f"/mobile/v1/consent/{CURRENT_CONSENT_VERSION}", params={"lang": lang})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    page = parse(answer.text)
    assert page.lang == lang
    text = " ".join(page.text)
    assert f"Version {CURRENT_CONSENT_VERSION}" in text
    for word in words:
        assert word in text
    assert f'href="/mobile/v1/privacy?lang={lang}"' in answer.text


def test_german_is_the_default_and_other_languages_are_422(client):
    answer = client.get(f"/mobile/v1/consent/{CURRENT_CONSENT_VERSION}")
    assert parse(answer.text).lang == "de"
    wrong = client.get(f"/mobile/v1/consent/{CURRENT_CONSENT_VERSION}", params={"lang": "fr"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "query.lang"


def test_an_unknown_version_is_a_404_problem_that_does_not_echo_the_path(client):
    answer = client.get("/mobile/v1/consent/<script>alert(1)")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert "<script>" not in answer.text
    assert CURRENT_CONSENT_VERSION in answer.json()["detail"]


@pytest.mark.parametrize(
    ("lang", "stored", "not_stored", "rights"),
    [
        (
            "de",
            ["pseudonyme Kennung", "verschlüsselt", "Besuche: 14 Tage", "Entscheidungen", "Reaktionen"],
            ["Keinen Namen, keine E-Mail-Adresse, keine Telefonnummer", "Keine MAC-Adresse"],
            [
                "Art. 15 und 20",
                "Widerruf und Löschung in einem Schritt",
                "Art. 77",
                "Betreiber dieser Plattform",
            ],
        ),
        (
            "en",
            [
                "pseudonymous identifier",
                "encrypted",
                "visits formed from them: 14 days",
                "Decisions",
                "responses",
            ],
            ["No name, no e-mail address, no phone number", "No MAC address"],
            ["Art. 15 and 20", "Withdrawal and erasure in one step", "Art. 77", "operator of this platform"],
        ),
    ],
)
def test_the_privacy_notice_says_what_is_stored_what_not_and_the_rights(
    client, lang, stored, not_stored, rights
):
    answer = client.get("/mobile/v1/privacy", params={"lang": lang})
    assert answer.status_code == 200
    page = parse(answer.text)
    assert page.lang == lang
    text = " ".join(page.text)
    for phrase in [*stored, *not_stored, *rights]:
        assert phrase in text, phrase
    assert "http://127.0.0.1:8000" in text  # the operator's public address, from the settings
    assert f'href="/mobile/v1/consent/{CURRENT_CONSENT_VERSION}?lang={lang}"' in answer.text


def test_the_retention_period_shown_is_the_configured_one(settings, clock):
    from fastapi.testclient import TestClient

    from server.app import create_app

    settings = settings.model_copy(update={"retention_days": 7, "public_url": "https://nahbar.example/<&>"})
    with TestClient(create_app(settings, clock=clock)) as client:
        answer = client.get("/mobile/v1/privacy", params={"lang": "en"})
    assert "visits formed from them: 7 days" in " ".join(parse(answer.text).text)
    assert "https://nahbar.example/&lt;&amp;&gt;" in answer.text  # escaped, never raw
    assert "<&>" not in answer.text


def test_pages_need_no_token(client):
    for url in ("/mobile/v1/consent", f"/mobile/v1/consent/{CURRENT_CONSENT_VERSION}", "/mobile/v1/privacy"):
        assert client.get(url).status_code == 200
