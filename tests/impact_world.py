"""A seeded history of passers-by for the impact tests: driven over HTTP through the real gateway, phone and
landing-page paths, with the scheduler off so that the test decides when the ledger is folded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign
from server.impact.tasks import fold_all
from tests.conftest import Clock
from tests.world import Charity, Phone, enrol, event, make_charity, opt_in


@dataclass
class Street:
    client: TestClient
    clock: Clock
    charity: Charity
    gateway: dict[str, str]
    phones: dict[str, Phone] = field(default_factory=dict)
    keys: int = 0

    def report(self, phone: Phone, kind: str, dwell: float) -> None:
        self.keys += 1
        answer = self.client.post(
            "/gateway/v1/events",
            json={"events": [event(f"evt-{self.keys:06d}", phone, self.clock.now, kind, dwell)]},
            headers=self.gateway,
        )
        assert answer.status_code == 200, answer.text

    def walk(self, phone: Phone, dwells: list[float], leave: bool = False) -> None:
        """An enter, a dwell report at each of `dwells` seconds (the clock moving along), maybe an exit."""
        start = self.clock.now
        self.report(phone, "enter", 0)
        for dwell in dwells:
            self.clock.now = start + timedelta(seconds=dwell)
            self.report(phone, "dwell", dwell)
        if leave:
            self.clock.advance(5)
            self.report(phone, "exit", dwells[-1] + 5 if dwells else 5)

    def landing(self, phone: Phone) -> str:
        """The path of the phone's newest prompt's landing page."""
        inbox = self.client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"]
        assert inbox, "the phone got no prompt"
        return urlsplit(inbox[0]["landing_url"]).path

    def fold(self) -> int:
        return fold_all(self.client.app.state.runtime.sessions, self.clock.now)


def open_street(client: TestClient, session: Session, clock: Clock, *, cta_url: str | None = None) -> Street:
    charity = make_charity(session, clock.now)
    if cta_url is not None:
        session.get_one(Campaign, charity.campaign_id).cta_url = cta_url
        session.commit()
    return Street(client, clock, charity, enrol(client, charity.enrolment_code))


def seed_history(street: Street) -> None:
    """Five passers-by at one site on 25 November (Berlin), each in a visit of its own:

    - anna stays 20 s (too short at the enter and at 5 s, prompted at 20 s), opens the prompt and accepts;
    - ben stays 5 s and leaves: too short twice, one visit, so one dwell_too_short;
    - clara consented to donation prompts only (the campaign asks for volunteers): scope_not_consented;
    - dora stays 20 s, is prompted, opens it and answers "not here";
    - emil stays 20 s and is prompted, and does nothing with it.
    """
    client = street.client
    street.phones = {
        "anna": opt_in(client),
        "ben": opt_in(client),
        "clara": opt_in(client, scopes=["donation"]),
        "dora": opt_in(client),
        "emil": opt_in(client),
    }
    p = street.phones
    street.walk(p["anna"], [5, 20])
    street.clock.advance(300)
    street.walk(p["ben"], [5], leave=True)
    street.clock.advance(300)
    street.walk(p["clara"], [20])
    street.clock.advance(300)
    street.walk(p["dora"], [5, 20])
    street.clock.advance(300)
    street.walk(p["emil"], [20])
    anna = street.landing(p["anna"])
    assert client.get(anna).status_code == 200
    assert client.get(f"{anna}/go", follow_redirects=False).status_code == 303
    dora = street.landing(p["dora"])
    assert client.get(dora).status_code == 200
    assert (
        client.post(dora, data={"kind": "not_here"}, headers={"Sec-Fetch-Site": "same-origin"}).status_code
        == 200
    )


# What seed_history comes to, worked out by hand from its docstring.
EXPECTED_TOTALS = {
    "seen": 5,
    "eligible": 3,  # anna, dora, emil: prompted
    "prompted": 3,
    "delivered": 0,  # no push channel: the prompts wait in the apps' inboxes
    "delivered_by_channel": {"webpush": 0, "fcm": 0, "apns": 0},
    "opened": 2,
    "accepted": 1,
    "declined": 1,
    "declined_by_answer": {"not_now": 0, "not_here": 1, "not_this_charity": 0},
    "confirmed": 0,
}
EXPECTED_SUPPRESSIONS = {"dwell_too_short": 1, "scope_not_consented": 1}
