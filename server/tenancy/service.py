"""Tenancy rules: who may create and change organisations, memberships, invites and platform settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from server.accounts import repository as accounts
from server.accounts.models import Invite
from server.accounts.service import check_lockout
from server.audit import service as audit
from server.core import const
from server.core.config import Settings
from server.core.const import Role
from server.core.errors import Conflict, Forbidden, Gone, NotFound, RuleViolation
from server.core.paging import PageParams
from server.core.security import hash_password, hash_token, new_token, verify_password
from server.core.versions import claim_version
from server.tenancy import repository
from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings
from server.tenancy.schemas import (
    OrganisationCreate,
    OrganisationPublic,
    OrganisationUpdate,
    PlatformSettingsPublic,
    PlatformSettingsUpdate,
)
from server.tenancy.scope import Principal


def _snap(row: Organisation) -> dict[str, Any]:
    return OrganisationPublic.model_validate(row).model_dump(mode="json")


def list_organisations(
    scope: Principal, session: Session, page: PageParams, q: str | None = None
) -> tuple[list[Organisation], int]:
    """The caller's organisations (every one, for the operator)."""
    return repository.organisations(scope, session, page, q)


def members(scope: Principal, session: Session, org_id: int) -> list[tuple[Membership, str]]:
    """Who belongs to a visible organisation (with their e-mail), and with which role."""
    visible_organisation(scope, session, org_id)
    return list(repository.memberships(scope, session, org_id))


def invites(scope: Principal, session: Session, org_id: int) -> list[Invite]:
    """The invites an organisation sent (owners)."""
    visible_organisation(scope, session, org_id)
    scope.require(org_id, Role.OWNER)
    return list(repository.invites(scope, session, org_id))


def platform_settings(session: Session) -> PlatformSettings:
    """The platform's maxima, which every admin may read."""
    return repository.platform_settings(session)


def visible_organisation(scope: Principal, session: Session, org_id: int) -> Organisation:
    org = repository.organisation(scope, session, org_id)
    if org is None:
        raise NotFound("No such organisation, or it is not yours.")
    return org


def check_caps(platform: PlatformSettings, prompts_per_week: int | None, cooldown_days: int | None) -> None:
    """An organisation may only be stricter than the platform; the 422 names the field and the limit."""
    if prompts_per_week is not None and prompts_per_week > platform.max_prompts_per_week:
        raise RuleViolation(
            f"prompts_per_week {prompts_per_week} exceeds the platform maximum of "
            f"{platform.max_prompts_per_week}; charities may only be stricter than the platform.",
            extra={"field": "prompts_per_week", "limit": platform.max_prompts_per_week},
        )
    if cooldown_days is not None and cooldown_days < platform.min_org_cooldown_days:
        raise RuleViolation(
            f"cooldown_days {cooldown_days} is shorter than the platform minimum of "
            f"{platform.min_org_cooldown_days} days between prompts from one charity.",
            extra={"field": "cooldown_days", "limit": platform.min_org_cooldown_days},
        )


def create_organisation(
    session: Session, scope: Principal, body: OrganisationCreate, now: datetime
) -> Organisation:
    scope.require_operator()
    if repository.slug_taken(session, body.slug):
        raise Conflict(f"The slug {body.slug!r} is taken; choose another.")
    check_caps(repository.platform_settings(session), body.prompts_per_week, body.cooldown_days)
    org = Organisation(**body.model_dump(), created_at=now)
    session.add(org)
    session.flush()
    audit.record(session, scope, "organisation.create", "organisation", org.id, org.id, None, _snap(org), now)
    return org


def update_organisation(
    session: Session,
    scope: Principal,
    org_id: int,
    body: OrganisationUpdate,
    if_match: str | None,
    now: datetime,
) -> Organisation:
    org = visible_organisation(scope, session, org_id)
    scope.require(org.id, Role.OWNER)
    changes = body.model_dump(exclude_unset=True)
    merged = {"prompts_per_week": org.prompts_per_week, "cooldown_days": org.cooldown_days} | changes
    check_caps(repository.platform_settings(session), merged["prompts_per_week"], merged["cooldown_days"])
    before = _snap(org)
    claim_version(session, org, if_match)
    for key, value in changes.items():
        setattr(org, key, value)
    session.flush()
    audit.record(
        session, scope, "organisation.update", "organisation", org.id, org.id, before, _snap(org), now
    )
    return org


def suspended_organisations(scope: Principal, session: Session | None) -> list[Organisation]:
    """The caller's suspended organisations, for the notice their admins see."""
    return [] if session is None else list(repository.suspended(scope, session))


def set_suspended(
    session: Session, scope: Principal, org_id: int, suspended: bool, if_match: str | None, now: datetime
) -> Organisation:
    """Suspend an organisation (its campaigns stop running at once and cannot start) or lift it (operator).

    Its campaigns keep their status: lifting the suspension lets the active ones run again."""
    scope.require_operator()
    org = visible_organisation(scope, session, org_id)
    if (org.suspended_at is not None) == suspended:
        return org  # already so: nothing changes, nothing to audit
    before = _snap(org)
    claim_version(session, org, if_match)
    org.suspended_at = now if suspended else None
    session.flush()
    action = "organisation.suspend" if suspended else "organisation.unsuspend"
    audit.record(session, scope, action, "organisation", org.id, org.id, before, _snap(org), now)
    return org


def _member_snap(m: Membership) -> dict[str, Any]:
    return {"user_id": m.user_id, "role": m.role}


def visible_member(scope: Principal, session: Session, org_id: int, membership_id: int) -> Membership:
    visible_organisation(scope, session, org_id)
    member = repository.membership(scope, session, org_id, membership_id)
    if member is None:
        raise NotFound("No such membership in this organisation.")
    return member


def change_role(
    session: Session,
    scope: Principal,
    org_id: int,
    membership_id: int,
    role: Role,
    if_match: str | None,
    now: datetime,
) -> Membership:
    visible_organisation(scope, session, org_id)
    scope.require(org_id, Role.OWNER)
    member = visible_member(scope, session, org_id, membership_id)
    if member.role == Role.OWNER and role != Role.OWNER and repository.owner_count(session, org_id) <= 1:
        raise Conflict("This is the organisation's last owner; make someone else owner first.")
    before = _member_snap(member)
    claim_version(session, member, if_match)
    member.role = role.value
    audit.record(
        session,
        scope,
        "membership.update",
        "membership",
        member.id,
        org_id,
        before,
        _member_snap(member),
        now,
    )
    return member


def remove_member(
    session: Session, scope: Principal, org_id: int, membership_id: int, if_match: str | None, now: datetime
) -> None:
    """Remove a member; like a role change it needs If-Match, so a removal never races a promotion."""
    visible_organisation(scope, session, org_id)
    scope.require(org_id, Role.OWNER)
    member = visible_member(scope, session, org_id, membership_id)
    if member.role == Role.OWNER and repository.owner_count(session, org_id) <= 1:
        raise Conflict("This is the organisation's last owner; make someone else owner first.")
    claim_version(session, member, if_match)
    audit.record(
        session, scope, "membership.delete", "membership", member.id, org_id, _member_snap(member), None, now
    )
    session.delete(member)


def create_invite(
    session: Session, scope: Principal, org_id: int, email: str, role: Role, now: datetime
) -> tuple[Invite, str]:
    visible_organisation(scope, session, org_id)
    scope.require(org_id, Role.OWNER)
    token = new_token("niv")
    invite = Invite(
        organisation_id=org_id,
        email=email.strip().lower(),
        role=role.value,
        token_hash=hash_token(token),
        invited_by_user_id=scope.user_id,
        created_at=now,
        expires_at=now + timedelta(seconds=const.INVITE_LIFETIME_S),
    )
    session.add(invite)
    session.flush()
    audit.record(
        session,
        scope,
        "invite.create",
        "invite",
        invite.id,
        org_id,
        None,
        {"email": invite.email, "role": invite.role},
        now,
    )
    return invite, token


def revoke_invite(session: Session, scope: Principal, org_id: int, invite_id: int, now: datetime) -> Invite:
    visible_organisation(scope, session, org_id)
    scope.require(org_id, Role.OWNER)
    invite = repository.invite(scope, session, org_id, invite_id)
    if invite is None:
        raise NotFound("No such invite in this organisation.")
    if invite.revoked_at is None and invite.accepted_at is None:
        invite.revoked_at = now
        audit.record(session, scope, "invite.revoke", "invite", invite.id, org_id, None, None, now)
    return invite


class WrongInvitePassword(Forbidden):
    """The invite is for an existing account and the password is wrong; counted like a failed login."""

    def __init__(self, email: str) -> None:
        super().__init__("This e-mail has an account; enter its password to accept the invite.")
        self.email = email


def _prove_password(
    session: Session, user: AdminUser, password: str, now: datetime, settings: Settings
) -> None:
    # The same lockout as login, so that an invite link is no way round it.
    check_lockout(session, user.email, None, now, settings)
    if not verify_password(user.password_hash, password):
        raise WrongInvitePassword(user.email)


def accept_invite(
    session: Session, token: str, password: str, now: datetime, settings: Settings
) -> tuple[AdminUser, Membership]:
    """Redeem a one-time invite: a new account gets this password, an existing one must prove it."""
    invite = repository.open_invite_by_hash(session, hash_token(token), now)
    if invite is None:
        raise Gone("This invite link is unknown, used, revoked or expired; ask for a new one.")
    claimed = session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.accepted_at.is_(None))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if not (isinstance(claimed, CursorResult) and claimed.rowcount == 1):
        raise Gone("This invite link has just been used.")
    invite.accepted_at = now
    user = accounts.user_by_email(session, invite.email)
    if user is None:
        if len(password) < const.MIN_PASSWORD_LENGTH:
            raise RuleViolation(
                f"Choose a password of at least {const.MIN_PASSWORD_LENGTH} characters.",
                extra={"field": "password"},
            )
        user = AdminUser(email=invite.email, password_hash=hash_password(password), created_at=now)
        session.add(user)
        session.flush()
    else:
        _prove_password(session, user, password, now, settings)
    member = repository.membership_of(session, user.id, invite.organisation_id)
    if member is None:
        member = Membership(
            user_id=user.id, organisation_id=invite.organisation_id, role=invite.role, created_at=now
        )
        session.add(member)
        session.flush()
    actor = Principal(user.id, user.email, user.is_operator, via="system")
    audit.record(
        session,
        actor,
        "invite.accept",
        "membership",
        member.id,
        invite.organisation_id,
        None,
        _member_snap(member),
        now,
    )
    return user, member


def update_platform(
    session: Session, scope: Principal, body: PlatformSettingsUpdate, if_match: str | None, now: datetime
) -> PlatformSettings:
    scope.require_operator()
    row = repository.platform_settings(session)
    before = PlatformSettingsPublic.model_validate(row).model_dump(mode="json")
    claim_version(session, row, if_match)
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None:
            raise RuleViolation(f"{key} cannot be empty.", extra={"field": key})
        setattr(row, key, value)
    if row.quiet_start == row.quiet_end:  # an empty window: the platform would have no quiet hours at all
        raise RuleViolation(
            "Quiet hours need a start and an end that differ, such as 21:00 to 08:00.",
            extra={"field": "quiet_end"},
        )
    row.updated_at = now
    session.flush()
    after = PlatformSettingsPublic.model_validate(row).model_dump(mode="json")
    audit.record(
        session, scope, "platform_settings.update", "platform_settings", row.id, None, before, after, now
    )
    return row
