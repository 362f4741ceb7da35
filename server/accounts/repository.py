"""Queries for admin users, their sessions, API tokens and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, CursorResult, delete, false, func, or_, select, text, true, update
from sqlalchemy.orm import Session

from server.accounts.models import AdminSession, ApiToken, Invite, LoginAttempt
from server.core.const import Role
from server.core.paging import PageParams, paginate
from server.tenancy.models import AdminUser, Membership
from server.tenancy.scope import Principal


def user_by_email(session: Session, email: str) -> AdminUser | None:
    return session.scalar(select(AdminUser).where(AdminUser.email == email.strip().lower()))


def user(session: Session, user_id: int) -> AdminUser | None:
    return session.get(AdminUser, user_id)


def roles_of(session: Session, user_id: int) -> dict[int, Role]:
    rows = session.execute(
        select(Membership.organisation_id, Membership.role).where(Membership.user_id == user_id)
    )
    return {org_id: Role(role) for org_id, role in rows}


def live_session(session: Session, token_hash: str, now: datetime) -> AdminSession | None:
    return session.scalar(
        select(AdminSession).where(
            AdminSession.token_hash == token_hash,
            AdminSession.revoked_at.is_(None),
            AdminSession.expires_at > now,
        )
    )


def live_token(session: Session, token_hash: str, now: datetime) -> ApiToken | None:
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )
    if token is None or (token.expires_at is not None and token.expires_at <= now):
        return None
    return token


def revoke_sessions(session: Session, user_id: int, now: datetime, keep: int | None = None) -> None:
    """End every session of the user but `keep` (the one that changed the password)."""
    query = update(AdminSession).where(AdminSession.user_id == user_id, AdminSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(AdminSession.id != keep)
    session.execute(query.values(revoked_at=now).execution_options(synchronize_session=False))


def revoke_tokens(session: Session, user_id: int, now: datetime) -> None:
    """Revoke every live API token of the user."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


USER_SORT = {"id": AdminUser.id, "email": AdminUser.email, "created_at": AdminUser.created_at}


def users(
    scope: Principal,
    session: Session,
    params: PageParams,
    q: str | None = None,
    disabled: bool | None = None,
) -> tuple[list[AdminUser], int]:
    """Every admin account, for the operator only (anyone else gets an empty page)."""
    query = select(AdminUser).where(true() if scope.is_operator else false())
    if q:
        query = query.where(AdminUser.email.contains(q.strip().lower(), autoescape=True))
    if disabled is not None:
        query = query.where(
            AdminUser.disabled_at.is_not(None) if disabled else AdminUser.disabled_at.is_(None)
        )
    return paginate(session, query, params, USER_SORT, AdminUser.id.asc())


def roles_of_users(session: Session, user_ids: Sequence[int]) -> dict[int, dict[int, Role]]:
    """Each user's role per organisation, for a page of users in one query."""
    found: dict[int, dict[int, Role]] = {user_id: {} for user_id in user_ids}
    rows = session.execute(
        select(Membership.user_id, Membership.organisation_id, Membership.role).where(
            Membership.user_id.in_(user_ids)
        )
    )
    for user_id, org_id, role in rows:
        found[user_id][org_id] = Role(role)
    return found


def tokens(scope: Principal, session: Session) -> Sequence[ApiToken]:
    """The caller's own tokens, newest first (nobody lists another person's tokens)."""
    return session.scalars(
        select(ApiToken).where(ApiToken.user_id == scope.user_id).order_by(ApiToken.id.desc())
    ).all()


def token(scope: Principal, session: Session, token_id: int) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == scope.user_id))


_ATTEMPTS_LOCK: Final = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_TAKE_WRITE_LOCK: Final = update(LoginAttempt).where(false()).values(succeeded=false())


def serialise_attempts(session: Session, email: str, client: str | None) -> None:
    """Hold, until the transaction ends, the lock of this e-mail's (and client's) login attempts, so that
    attempts in flight on any worker are counted one after the other, not all checked before any is recorded.

    PostgreSQL: transaction-level advisory locks, e-mail first, then client (one order: no deadlock). SQLite:
    a write that changes nothing takes the database's one write lock, and the counts read after it see every
    attempt committed before."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(_TAKE_WRITE_LOCK)
        return
    session.execute(_ATTEMPTS_LOCK, {"key": f"login-email:{email}"})
    if client is not None:
        session.execute(_ATTEMPTS_LOCK, {"key": f"login-client:{client[:64]}"})


def record_attempt(session: Session, email: str, client: str, succeeded: bool, now: datetime) -> None:
    session.add(LoginAttempt(at=now, email=email, client=client[:64], succeeded=succeeded))
    session.flush()


def failures_for_email(session: Session, email: str, since: datetime) -> int:
    """Failed logins for this e-mail since `since` and since its last success."""
    key = LoginAttempt.email == email
    last_ok = session.scalar(select(func.max(LoginAttempt.at)).where(key, LoginAttempt.succeeded.is_(True)))
    start = max(since, last_ok) if last_ok is not None else since
    return _failures(session, key, start)


def failures_for_client(session: Session, client: str, since: datetime) -> int:
    """Failed logins from this client since `since`; a success does not reset it (own account, many tries)."""
    return _failures(session, LoginAttempt.client == client[:64], since)


def _failures(session: Session, key: ColumnElement[bool], since: datetime) -> int:
    query = select(func.count()).where(key, LoginAttempt.succeeded.is_(False), LoginAttempt.at > since)
    return session.scalar(query) or 0


# --- Cleanup: sign-in records that ended before a cutoff, deleted in batches ------------------------------


def delete_login_attempts_before(session: Session, cutoff: datetime, limit: int) -> int:
    return _delete_batch(session, LoginAttempt, LoginAttempt.at < cutoff, limit)


def delete_sessions_ended_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Sessions that expired or were ended (logout, password change, disabled account) before `cutoff`."""
    ended = or_(AdminSession.expires_at < cutoff, AdminSession.revoked_at < cutoff)
    return _delete_batch(session, AdminSession, ended, limit)


def delete_tokens_ended_before(session: Session, cutoff: datetime, limit: int) -> int:
    """API tokens that expired or were revoked before `cutoff`; one without an expiry stays until revoked."""
    ended = or_(ApiToken.expires_at < cutoff, ApiToken.revoked_at < cutoff)
    return _delete_batch(session, ApiToken, ended, limit)


def delete_invites_ended_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Invites that expired, were used or were revoked before `cutoff` (the audit log keeps who joined)."""
    ended = or_(Invite.expires_at < cutoff, Invite.accepted_at < cutoff, Invite.revoked_at < cutoff)
    return _delete_batch(session, Invite, ended, limit)


def _delete_batch(session: Session, model: Any, ended: ColumnElement[bool], limit: int) -> int:
    """Delete up to `limit` rows matching `ended`, skipping rows another worker holds (PostgreSQL)."""
    ids = session.scalars(
        select(model.id).where(ended).order_by(model.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return 0  # no write when there is nothing to do: SQLite has one writer at a time
    result = session.execute(delete(model).where(model.id.in_(ids)))
    assert isinstance(result, CursorResult)
    return result.rowcount
