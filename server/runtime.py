"""What the running app holds: settings, database, clock and the EID index, built in the lifespan."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from server.core.config import Settings
from server.core.db import make_engine, make_sessionmaker
from server.core.security import KeySealer
from server.presence.eid_index import EidIndex, Keyed
from server.subscribers.models import Subscriber


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

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime] = system_clock) -> Runtime:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        sealer = KeySealer(settings.secret_key.get_secret_value())

        def load_keys() -> Iterator[Keyed]:
            with sessions() as session:
                rows = session.execute(
                    select(Subscriber.id, Subscriber.identity_key_sealed, Subscriber.rotation_exponent)
                )
                for sub_id, sealed, k in rows:
                    yield Keyed(sub_id, sealer.open(sealed, sub_id.bytes), k)

        index = EidIndex(load_keys, clock=lambda: clock().timestamp())
        return cls(settings, engine, sessions, sealer, index, clock)

    def close(self) -> None:
        self.engine.dispose()
