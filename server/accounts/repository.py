"""Queries for admin users, their sessions, API tokens and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from server.accounts.models import AdminSession, ApiToken, LoginAttempt
from server.core.const import Role
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


def tokens(scope: Principal, session: Session) -> Sequence[ApiToken]:
    """The caller's own tokens, newest first (nobody lists another person's tokens)."""
    return session.scalars(
        select(ApiToken).where(ApiToken.user_id == scope.user_id).order_by(ApiToken.id.desc())
    ).all()


def token(scope: Principal, session: Session, token_id: int) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == scope.user_id))


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
