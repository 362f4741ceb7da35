"""The world the load benchmark runs in: a PostgreSQL database made for the run, charities with sites and a
gateway each, a walk-by or a door campaign per charity, an admin's read token, and opted-in subscribers
seeded in bulk (their identity keys sealed as `subscribers.opt_in` seals them, so every worker's EID index
resolves their EIDs), and `nahbar serve --workers N` on it."""

from __future__ import annotations

import random
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bench.delivery import noon_zone
from bench.serving import SECRET, free_port, server_env, serving

ROOT: Final = Path(__file__).resolve().parent.parent
BIN: Final = Path(sys.executable).parent
IBEACON_UUID: Final = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"  # every site's region, told apart by major
CHUNK: Final = 5_000
CONSENT_VERSION: Final = "2026-11"


@dataclass(frozen=True, slots=True)
class Gateway:
    id: int
    token: str
    site_id: int
    major: int  # its site's iBeacon major


@dataclass(frozen=True, slots=True)
class Person:
    id: uuid.UUID
    identity_key: bytes
    k: int
    token: str | None  # a device token for the mobile API (the iOS share of them), else None


@dataclass(frozen=True, slots=True)
class World:
    url: str
    gateways: list[Gateway]
    people: list[Person]
    admin_token: str
    organisation_ids: list[int]
    max_per_day: int
    max_per_week: int
    seed_s: float


def seed(url: str, gateways: int, subscribers: int, charities: int, mobile: int, k: int) -> World:
    """Fill the migrated database; `mobile` of the subscribers get device tokens."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from server.accounts.models import ApiToken
    from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
    from server.core.db import make_engine
    from server.core.security import KeySealer, hash_token
    from server.sites.models import Gateway as GatewayRow
    from server.sites.models import Site
    from server.subscribers.models import ConsentRecord, Subscriber
    from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings

    began = time.monotonic()
    rng = random.Random(20)
    engine = make_engine(url)
    now = datetime.now(UTC)
    zone = noon_zone(now)
    made: list[Gateway] = []
    organisations: list[int] = []
    with Session(engine) as session:
        platform = PlatformSettings()
        session.add(platform)
        operator = AdminUser(email="bench@nahbar.example", password_hash="x", is_operator=True)
        session.add(operator)
        session.flush()
        admin_token = secrets.token_urlsafe(24)
        session.add(
            ApiToken(user_id=operator.id, name="bench", token_hash=hash_token(admin_token), scopes=["read"])
        )
        for n in range(charities):
            org = Organisation(slug=f"org{n}", name=f"Charity {n}", privacy_contact="dpo@example.org")
            session.add(org)
            session.flush()
            organisations.append(org.id)
            session.add(Membership(user_id=operator.id, organisation_id=org.id, role="owner"))
            walk_by = n % 2 == 0  # half decide on the enter, half at the door's 15 s dwell mark
            kind = "volunteer" if walk_by else "donation"
            campaign = Campaign(
                organisation_id=org.id,
                name=f"{kind} {n}",
                kind=kind,
                status="active",
                priority=1,
                min_dwell_s=0 if walk_by else None,
            )
            session.add(campaign)
            session.flush()
            for language in ("de", "en"):
                session.add(
                    CampaignVariant(
                        campaign_id=campaign.id,
                        language=language,
                        title="Helfen?",
                        body="Bitte.",
                        cta_label="Ja",
                    )
                )
            for m in range(n, gateways, charities):
                site = Site(
                    organisation_id=org.id,
                    name=f"Door {m}",
                    timezone=zone,
                    language="de",
                    ibeacon_uuid=IBEACON_UUID,
                    ibeacon_major=m,
                )
                session.add(site)
                session.flush()
                session.add(CampaignSite(campaign_id=campaign.id, site_id=site.id))
                token = secrets.token_urlsafe(24)
                row = GatewayRow(
                    organisation_id=org.id,
                    site_id=site.id,
                    name=f"window {m}",
                    token_hash=hash_token(token),
                    enrolled_at=now,
                )
                session.add(row)
                session.flush()
                made.append(Gateway(row.id, token, site.id, m))
        session.commit()
        max_per_day, max_per_week = platform.max_prompts_per_day, platform.max_prompts_per_week
        sealer = KeySealer(SECRET)
        people = []
        for n in range(subscribers):
            person_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            token = f"ndv_bench_{n:08d}_{secrets.token_hex(8)}" if n < mobile else None
            people.append(Person(person_id, rng.randbytes(16), k, token))
        for start in range(0, subscribers, CHUNK):
            chunk = people[start : start + CHUNK]
            session.execute(
                insert(Subscriber),
                [
                    {
                        "id": p.id,
                        "device_token_hash": hash_token(p.token or p.id.hex),
                        "identity_key_sealed": sealer.seal(p.identity_key, p.id.bytes),  # as opt_in seals
                        "rotation_exponent": k,
                        "scopes": ["donation", "volunteer"],
                        "language": "de",
                        "preferences": {},
                        "created_at": now,
                        "version": 1,
                    }
                    for p in chunk
                ],
            )
            session.execute(
                insert(ConsentRecord),
                [
                    {
                        "subscriber_id": p.id,
                        "text_version": CONSENT_VERSION,
                        "scopes": ["donation", "volunteer"],
                        "language": "de",
                        "given_at": now,
                    }
                    for p in chunk
                ],
            )
        session.commit()
    with engine.connect() as connection:  # fresh statistics, as autovacuum would have them by now
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return World(
        url,
        made,
        people,
        admin_token,
        organisations,
        max_per_day,
        max_per_week,
        time.monotonic() - began,
    )


@contextmanager
def server(url: str, workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """`nahbar serve --workers N` on the database; yields its base URL and the pid of its supervisor."""
    port = free_port()
    command = [str(BIN / "nahbar"), "serve", "--port", str(port), "--workers", str(workers)]
    with serving(command, server_env(url), port, log, workers=workers, ready_within_s=300) as served:
        yield served
