"""Sign-in rules: login with lockout, sessions with CSRF tokens, API tokens, password change."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from server.accounts import repository
from server.accounts.models import AdminSession, ApiToken
from server.audit import service as audit
from server.core import const
from server.core.config import Settings
from server.core.const import Role, TokenScope
from server.core.errors import (
    Conflict,
    CsrfFailed,
    Forbidden,
    InsufficientScope,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from server.core.paging import PageParams
from server.core.security import (
    hash_password,
    hash_token,
    new_token,
    password_needs_rehash,
    same_token,
    verify_password,
)
from server.tenancy.models import AdminUser
from server.tenancy.scope import Principal, Via

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALL_SCOPES = frozenset(s.value for s in TokenScope)


@dataclass(frozen=True, slots=True)
class LoggedIn:
    user: AdminUser
    session_token: str
    csrf_token: str
    expires_at: datetime


def check_lockout(
    session: Session, email: str, client: str | None, now: datetime, settings: Settings
) -> None:
    """429 when this e-mail (or this client) failed too often within the lockout window. Holds the lock of
    their attempts until the transaction ends: the caller records this attempt in the same transaction."""
    repository.serialise_attempts(session, email, client)
    since = now - timedelta(seconds=settings.login_window_seconds)
    wait = f"wait {-(-settings.login_window_seconds // 60)} minutes and try again"
    if repository.failures_for_email(session, email, since) >= settings.max_failures_per_account:
        raise TooManyAttempts(f"Too many failed logins for this account; {wait}.")
    if client is not None and (
        repository.failures_for_client(session, client, since) >= settings.max_failures_per_client
    ):
        raise TooManyAttempts(f"Too many failed logins from this address; {wait}.")


def login(
    session: Session, email: str, password: str, client: str, now: datetime, settings: Settings
) -> LoggedIn:
    """Check the password, unless this e-mail or client failed too often lately; records every attempt.

    The caller must commit even when this raises Unauthorized, so that failures are counted.
    """
    email = email.strip().lower()
    check_lockout(session, email, client, now, settings)
    user = repository.user_by_email(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled_at is not None:
        repository.record_attempt(session, email, client, False, now)
        raise Unauthorized("Wrong e-mail or password.")
    repository.record_attempt(session, email, client, True, now)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token, csrf = new_token("nss"), secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=settings.session_lifetime_seconds)
    session.add(
        AdminSession(
            user_id=user.id,
            token_hash=hash_token(token),
            csrf_hash=hash_token(csrf),
            created_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    return LoggedIn(user, token, csrf, expires)


def authenticate(
    session: Session,
    *,
    bearer: str | None,
    cookie: str | None,
    csrf: str | None,
    method: str,
    now: datetime,
) -> Principal:
    """The caller from an API token or a session cookie; cookie-borne changes need the CSRF header."""
    if bearer:
        token = repository.live_token(session, hash_token(bearer), now)
        if token is None:
            raise Unauthorized("Unknown, expired or revoked API token; create a new one.")
        if method not in SAFE_METHODS and TokenScope.WRITE.value not in token.scopes:
            raise InsufficientScope(
                "This token may only read; create one with the 'write' scope to change things."
            )
        token.last_used_at = now
        return _principal(session, token.user_id, "token", token.id, frozenset(token.scopes))
    if cookie:
        row = repository.live_session(session, hash_token(cookie), now)
        if row is None:
            raise Unauthorized("Your session has ended; log in again.")
        if method not in SAFE_METHODS and not (csrf and same_token(csrf, row.csrf_hash)):
            raise CsrfFailed(f"Send the CSRF token from login in the {const.CSRF_HEADER} header.")
        return _principal(session, row.user_id, "session", row.id, ALL_SCOPES)
    raise Unauthorized("Log in, or send an API token as 'Authorization: Bearer <token>'.")


def _principal(
    session: Session, user_id: int, via: Via, credential_id: int, scopes: frozenset[str]
) -> Principal:
    user = repository.user(session, user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthorized("This account is disabled.")
    roles = repository.roles_of(session, user_id)
    return Principal(user.id, user.email, user.is_operator, roles, via, credential_id, scopes)


def logout(session: Session, principal: Principal, now: datetime) -> None:
    if principal.via == "session" and principal.credential_id is not None:
        row = session.get(AdminSession, principal.credential_id)
        if row is not None:
            row.revoked_at = now


def change_password(session: Session, principal: Principal, current: str, new: str, now: datetime) -> None:
    """Set a new password and end every other session of the user."""
    user = repository.user(session, principal.user_id)
    if user is None or not verify_password(user.password_hash, current):
        raise Forbidden("The current password is wrong.")
    user.password_hash = hash_password(new)
    keep = principal.credential_id if principal.via == "session" else None
    repository.revoke_sessions(session, user.id, now, keep=keep)
    audit.record(session, principal, "password.change", "admin_user", user.id, None, None, None, now)


def _require_session(principal: Principal) -> None:
    # A leaked token must not mint more tokens.
    if principal.via != "session":
        raise Forbidden("Manage API tokens while logged in, not with a token.")


def tokens(session: Session, principal: Principal) -> list[ApiToken]:
    """The caller's own API tokens, newest first (never their values)."""
    return list(repository.tokens(principal, session))


def create_token(
    session: Session, principal: Principal, name: str, scopes: list[str], days: int | None, now: datetime
) -> tuple[ApiToken, str]:
    _require_session(principal)
    plaintext = new_token("nat")
    expires = now + timedelta(days=days) if days else None
    row = ApiToken(
        user_id=principal.user_id,
        name=name,
        token_hash=hash_token(plaintext),
        scopes=sorted(set(scopes)),
        created_at=now,
        expires_at=expires,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        principal,
        "api_token.create",
        "api_token",
        row.id,
        None,
        None,
        {"name": name, "scopes": row.scopes},
        now,
    )
    return row, plaintext


def revoke_token(session: Session, principal: Principal, token_id: int, now: datetime) -> ApiToken:
    _require_session(principal)
    row = repository.token(principal, session, token_id)
    if row is None:
        raise NotFound("No such API token of yours.")
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(session, principal, "api_token.revoke", "api_token", row.id, None, None, None, now)
    return row


def list_users(
    session: Session, principal: Principal, page: PageParams, q: str | None, disabled: bool | None
) -> tuple[list[AdminUser], int, dict[int, dict[int, Role]]]:
    """Every admin account (operator): a page of them, the total, and each one's roles by organisation."""
    principal.require_operator()
    rows, total = repository.users(principal, session, page, q, disabled)
    return rows, total, repository.roles_of_users(session, [u.id for u in rows])


def set_disabled(
    session: Session, principal: Principal, user_id: int, disabled: bool, now: datetime
) -> AdminUser:
    """Disable an account (its sessions and API tokens end at once, for good) or enable it (operator)."""
    principal.require_operator()
    user = repository.user(session, user_id)
    if user is None:
        raise NotFound("No such admin user.")
    if disabled and user.id == principal.user_id:
        raise Conflict("You cannot disable your own account; another operator must.")
    if (user.disabled_at is not None) == disabled:
        return user  # already so: nothing changes, nothing to audit
    before = {"disabled_at": _iso(user.disabled_at)}
    user.disabled_at = now if disabled else None
    if disabled:
        repository.revoke_sessions(session, user.id, now)
        repository.revoke_tokens(session, user.id, now)
    action = "admin_user.disable" if disabled else "admin_user.enable"
    after = {"disabled_at": _iso(user.disabled_at)}
    audit.record(session, principal, action, "admin_user", user.id, None, before, after, now)
    return user


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True)
class Purged:
    """Rows of ended sign-in records deleted by one cleanup batch (or a whole run)."""

    login_attempts: int = 0
    sessions: int = 0
    api_tokens: int = 0
    invites: int = 0

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            self.login_attempts + other.login_attempts,
            self.sessions + other.sessions,
            self.api_tokens + other.api_tokens,
            self.invites + other.invites,
        )

    def most(self) -> int:
        return max(self.login_attempts, self.sessions, self.api_tokens, self.invites)


def purge_batch(session: Session, now: datetime, limit: int) -> Purged:
    """Delete up to `limit` rows of each kind that ended more than ACCOUNT_RECORDS_KEEP_DAYS ago.

    Login attempts (e-mail and client address) are needed for the lockout only within its window; the rest
    of the time they are kept for looking into attacks. Idempotent, and safe in several workers at once.
    """
    cutoff = now - timedelta(days=const.ACCOUNT_RECORDS_KEEP_DAYS)
    return Purged(
        repository.delete_login_attempts_before(session, cutoff, limit),
        repository.delete_sessions_ended_before(session, cutoff, limit),
        repository.delete_tokens_ended_before(session, cutoff, limit),
        repository.delete_invites_ended_before(session, cutoff, limit),
    )
