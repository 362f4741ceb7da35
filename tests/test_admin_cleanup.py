"""The accounts cleanup: login attempts, ended sessions, ended API tokens and used or expired invites are
deleted 30 days after they ended, by a job listed with the retention jobs; live ones stay."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.accounts import tasks
from server.accounts.models import AdminSession, ApiToken, Invite, LoginAttempt
from server.accounts.service import Purged
from server.core import const
from server.core.db import make_sessionmaker
from server.core.security import hash_token
from server.retention.tasks import JOBS
from tests.admin_world import World, make_world

KEEP = timedelta(days=const.ACCOUNT_RECORDS_KEEP_DAYS)
DAY = timedelta(days=1)


def cleanup_job():
    [job] = [job for job in JOBS if job.name == "accounts-cleanup"]
    return job


def names(session: Session, model: type, column) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(column)).all())


def seed(session: Session, world: World, now: datetime) -> None:
    """One row of each kind just past the cutoff (`gone-*`) and one just inside it (`kept-*`)."""
    user_id = world.users["owner_a"].id
    org_id = world.ids["a"]["org_id"]
    old, recent = now - KEEP - DAY, now - KEEP + DAY

    def session_row(label: str, expires: datetime, revoked: datetime | None = None) -> AdminSession:
        return AdminSession(
            user_id=user_id,
            token_hash=hash_token(label),
            csrf_hash=hash_token(label + "-csrf"),
            created_at=expires - timedelta(hours=12),
            expires_at=expires,
            revoked_at=revoked,
        )

    def token(label: str, expires: datetime | None, revoked: datetime | None = None) -> ApiToken:
        return ApiToken(
            user_id=user_id,
            name=label,
            token_hash=hash_token(label),
            scopes=["read"],
            expires_at=expires,
            revoked_at=revoked,
        )

    def invite(label: str, expires: datetime, **ended: datetime) -> Invite:
        return Invite(
            organisation_id=org_id,
            email=f"{label}@alpha.example",
            role="viewer",
            token_hash=hash_token(secrets.token_urlsafe(8)),
            expires_at=expires,
            **ended,
        )

    session.add_all(
        [
            LoginAttempt(at=old, email="gone-attempt@x.example", client="198.51.100.1", succeeded=False),
            LoginAttempt(at=recent, email="kept-attempt@x.example", client="198.51.100.1", succeeded=False),
            session_row("gone-expired", old),
            session_row("gone-revoked", now + DAY, revoked=old),  # ended early by a logout
            session_row("kept-expired", recent),
            token("gone-expired", old),
            token("gone-revoked", None, revoked=old),
            token("kept-expired", recent),
            token("kept-revoked", None, revoked=recent),
            token("kept-forever", None),
            invite("gone-expired", old),
            invite("gone-accepted", now + DAY, accepted_at=old),
            invite("gone-revoked", now + DAY, revoked_at=old),
            invite("kept-accepted", now + DAY, accepted_at=recent),
            invite("kept-open", now + DAY),
        ]
    )
    session.commit()


def labels(session: Session) -> dict[str, set[str]]:
    """What is left of the seeded rows (the world's own rows are live and not counted)."""
    sessions_left = {
        label
        for label in ("gone-expired", "gone-revoked", "kept-expired")
        if session.scalar(select(AdminSession.id).where(AdminSession.token_hash == hash_token(label)))
    }
    return {
        "attempts": {e.split("@")[0] for e in names(session, LoginAttempt, LoginAttempt.email)},
        "sessions": sessions_left,
        "tokens": {n for n in names(session, ApiToken, ApiToken.name) if n != "script"},
        "invites": {
            e.split("@")[0] for e in names(session, Invite, Invite.email) if e.startswith(("gone", "kept"))
        },
    }


def test_the_job_deletes_what_ended_30_days_ago_and_keeps_the_rest(quiet_client, session, clock):
    world = make_world(session, clock())
    seed(session, world, clock())
    job = cleanup_job()
    assert (job.every_s, job.at_start) == (3600, True)

    report = job.run(quiet_client.app.state.runtime)

    assert report == Purged(login_attempts=1, sessions=2, api_tokens=2, invites=3)
    assert labels(session) == {
        "attempts": {"kept-attempt"},
        "sessions": {"kept-expired"},
        "tokens": {"kept-expired", "kept-revoked", "kept-forever"},
        "invites": {"kept-accepted", "kept-open"},
    }
    # The world's live sessions still sign their users in.
    me = quiet_client.get("/admin/api/v1/auth/me", headers=world.headers["owner_a"])
    assert me.status_code == 200


def test_running_twice_deletes_nothing_more(quiet_client, session, clock):
    world = make_world(session, clock())
    seed(session, world, clock())
    runtime = quiet_client.app.state.runtime
    cleanup_job().run(runtime)
    left = labels(session)

    assert cleanup_job().run(runtime) == Purged()
    assert labels(session) == left


def test_time_moving_on_ends_the_rest(quiet_client, session, clock):
    world = make_world(session, clock())
    seed(session, world, clock())
    runtime = quiet_client.app.state.runtime
    cleanup_job().run(runtime)

    clock.advance((KEEP + 2 * DAY).total_seconds())
    report = cleanup_job().run(runtime)

    assert labels(session) == {
        "attempts": set(),
        "sessions": set(),
        "tokens": {"kept-forever"},
        "invites": set(),
    }
    # The world's own sessions (one per caller) ended an hour after they began, now long ago.
    assert report.sessions == 1 + len(world.headers)
    assert session.scalar(select(func.count()).select_from(AdminSession)) == 0


def test_workers_purging_at_once_delete_each_row_once(session, clock, engine):
    now = clock()
    world = make_world(session, now)
    session.add_all(
        LoginAttempt(at=now - KEEP - DAY, email=f"a{n}@x.example", client="198.51.100.2", succeeded=False)
        for n in range(40)
    )
    session.commit()
    seed(session, world, now)
    sessions = make_sessionmaker(engine)
    start = threading.Barrier(3)
    reports: list[Purged] = []
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            reports.append(tasks.purge(sessions, now, batch=3))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = sum(reports, Purged())
    assert total == Purged(login_attempts=41, sessions=2, api_tokens=2, invites=3)
    assert labels(session)["attempts"] == {"kept-attempt"}
