"""Tenancy queries, each filtered through the caller's Principal: another tenant's rows never load."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.accounts.models import Invite
from server.core.const import Role
from server.core.paging import PageParams, paginate
from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings
from server.tenancy.scope import Principal

ORG_SORT = {
    "id": Organisation.id,
    "slug": Organisation.slug,
    "name": Organisation.name,
    "created_at": Organisation.created_at,
}


def organisations(
    scope: Principal, session: Session, params: PageParams, q: str | None = None
) -> tuple[list[Organisation], int]:
    query = select(Organisation).where(scope.visible(Organisation.id))
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(func.lower(Organisation.name).like(pattern) | Organisation.slug.like(pattern))
    return paginate(session, query, params, ORG_SORT, Organisation.id.asc())


def organisation(scope: Principal, session: Session, org_id: int) -> Organisation | None:
    return session.scalar(
        select(Organisation).where(Organisation.id == org_id, scope.visible(Organisation.id))
    )


def suspended(scope: Principal, session: Session) -> Sequence[Organisation]:
    """The caller's organisations that the operator suspended."""
    return session.scalars(
        select(Organisation)
        .where(scope.visible(Organisation.id), Organisation.suspended_at.is_not(None))
        .order_by(Organisation.name)
    ).all()


def slug_taken(session: Session, slug: str) -> bool:
    return session.scalar(select(Organisation.id).where(Organisation.slug == slug)) is not None


def memberships(scope: Principal, session: Session, org_id: int) -> Sequence[tuple[Membership, str]]:
    rows = session.execute(
        select(Membership, AdminUser.email)
        .join(AdminUser, AdminUser.id == Membership.user_id)
        .where(Membership.organisation_id == org_id, scope.visible(Membership.organisation_id))
        .order_by(Membership.id)
    )
    return [(m, email) for m, email in rows]


def membership(scope: Principal, session: Session, org_id: int, membership_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(
            Membership.id == membership_id,
            Membership.organisation_id == org_id,
            scope.visible(Membership.organisation_id),
        )
    )


def owner_count(session: Session, org_id: int) -> int:
    query = select(func.count()).where(
        Membership.organisation_id == org_id, Membership.role == Role.OWNER.value
    )
    return session.scalar(query) or 0


def membership_of(session: Session, user_id: int, org_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.user_id == user_id, Membership.organisation_id == org_id)
    )


def invites(scope: Principal, session: Session, org_id: int) -> Sequence[Invite]:
    return session.scalars(
        select(Invite)
        .where(Invite.organisation_id == org_id, scope.visible(Invite.organisation_id, Role.OWNER))
        .order_by(Invite.id.desc())
    ).all()


def invite(scope: Principal, session: Session, org_id: int, invite_id: int) -> Invite | None:
    return session.scalar(
        select(Invite).where(
            Invite.id == invite_id, Invite.organisation_id == org_id, scope.visible(Invite.organisation_id)
        )
    )


def open_invite_by_hash(session: Session, token_hash: str, now: datetime) -> Invite | None:
    """Unscoped on purpose: the token is the credential. Locked, so that it is used once."""
    return session.scalar(
        select(Invite)
        .where(
            Invite.token_hash == token_hash,
            Invite.accepted_at.is_(None),
            Invite.revoked_at.is_(None),
            Invite.expires_at > now,
        )
        .with_for_update()
    )


def platform_settings(session: Session) -> PlatformSettings:
    """The one settings row, created with the design's defaults on first use."""
    row = session.scalar(select(PlatformSettings).order_by(PlatformSettings.id).limit(1))
    if row is None:
        row = PlatformSettings()
        session.add(row)
        session.flush()
    return row
