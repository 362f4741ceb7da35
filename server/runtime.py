"""What the running app holds: settings, database, clock and the EID index, built in the lifespan."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.core.config import Settings
from server.core.db import POOL_RESERVE, make_engine, make_sessionmaker
from server.core.security import KeySealer
from server.delivery.providers import PushOffer
from server.limits.buckets import Buckets, buckets_for
from server.presence.batcher import SightingBatcher
from server.presence.eid_index import EidIndex, Keyed
from server.presence.opt_in_notices import OptInListener
from server.presence.opt_ins import OptInLook
from server.subscribers.models import Subscriber

log = logging.getLogger("nahbar.runtime")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    sealer: KeySealer
    eid_index: EidIndex
    clock: Callable[[], datetime]
    opt_ins: OptInLook
    buckets: Buckets  # where the rate limits are counted (server/limits/buckets.py)
    # Other workers' opt-ins as they commit (PostgreSQL); None on SQLite. Started by the app's lifespan.
    opt_in_notices: OptInListener | None = None
    # Combines concurrent sightings (gateways' batches, phones' own) into one transaction; None for an
    # in-memory SQLite database, whose one connection belongs to one thread.
    sightings: SightingBatcher | None = None
    # The push channels this process's outbox can send to; set when the outbox is built.
    push: PushOffer = PushOffer()

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime] = system_clock) -> Runtime:
        engine = make_engine(
            settings.database_url, pool_size=settings.max_concurrent_requests + POOL_RESERVE, serving=True
        )
        sessions = make_sessionmaker(engine)
        sealer = KeySealer(settings.secret_key.get_secret_value())

        def load_keys(
            since: datetime | None = None, ids: Sequence[uuid.UUID] | None = None
        ) -> Iterator[Keyed]:
            """Every subscriber's key, or of those who opted in at or after `since` (for a look), or of
            `ids` (for notices)."""
            query = select(Subscriber.id, Subscriber.identity_key_sealed, Subscriber.rotation_exponent)
            if since is not None:
                query = query.where(Subscriber.created_at >= since)
            if ids is not None:
                query = query.where(Subscriber.id.in_(ids))
            with sessions() as session:
                for sub_id, sealed, k in session.execute(query):
                    yield Keyed(sub_id, sealer.open(sealed, sub_id.bytes), k)

        # resolve() reads the clock once per event: time.time is the system clock's timestamp, 5x cheaper.
        index_clock = time.time if clock is system_clock else lambda: clock().timestamp()
        index = EidIndex(load_keys, clock=index_clock)
        # Keys are read and unsealed here, once, and every window built: the app serves only when the index
        # can answer. Rotations after this are the eid-rotation job's (server/presence/tasks.py).
        started = time.monotonic()
        try:
            count = index.load()
        except SQLAlchemyError as exc:
            # Database down or not migrated yet: serve anyway (readyz says why), refuse events with 503 so
            # gateways keep them, and let the eid-rotation job load the keys once the database can answer.
            log.warning("EID index not loaded yet: %s", type(exc).__name__)
        else:
            seconds = round(time.monotonic() - started, 3)
            log.info("EID index loaded", extra={"subscribers": count, "seconds": seconds})
        url = engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        batcher = None if in_memory else SightingBatcher(sessions)
        look = OptInLook(index, load_keys, clock)
        notices = None
        if url.get_backend_name() == "postgresql":
            notices = OptInListener(settings.database_url, index, lambda ids: load_keys(ids=ids), look.now)
        buckets = buckets_for(settings, engine, sessions, lambda: clock().timestamp())
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            sealer=sealer,
            eid_index=index,
            clock=clock,
            opt_ins=look,
            buckets=buckets,
            opt_in_notices=notices,
            sightings=batcher,
        )

    def close(self) -> None:
        self.buckets.close()
        self.engine.dispose()
