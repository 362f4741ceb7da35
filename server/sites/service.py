"""Gateway lifecycle: create with a one-time enrolment code, enrol it for a token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from server.core.errors import Conflict, Unauthorized
from server.core.security import hash_token, new_enrolment_code, new_token, normalise_code
from server.sites import repository
from server.sites.models import Gateway, Site

ENROLMENT_CODE_LIFETIME = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class IssuedCode:
    gateway: Gateway
    code: str
    expires_at: datetime


def issue_enrolment_code(session: Session, site: Site, name: str, now: datetime) -> IssuedCode:
    """Create a gateway at `site` and a one-time code for it; only the code's hash is stored."""
    code = new_enrolment_code()
    gateway = Gateway(
        organisation_id=site.organisation_id,
        site_id=site.id,
        name=name,
        enrolment_code_hash=hash_token(normalise_code(code)),
        enrolment_expires_at=now + ENROLMENT_CODE_LIFETIME,
        config={},
    )
    session.add(gateway)
    session.flush()
    return IssuedCode(gateway, code, now + ENROLMENT_CODE_LIFETIME)


def reissue_enrolment_code(session: Session, gateway: Gateway, now: datetime) -> str:
    """A new code for an existing gateway (re-imaging a Pi); the old token stops working on enrolment."""
    code = new_enrolment_code()
    gateway.enrolment_code_hash = hash_token(normalise_code(code))
    gateway.enrolment_expires_at = now + ENROLMENT_CODE_LIFETIME
    gateway.revoked_at = None
    return code


def enrol(session: Session, code: str, now: datetime) -> tuple[Gateway, str]:
    """Exchange a one-time code for a gateway token; the code cannot be used again."""
    gateway = repository.gateway_by_code_hash(session, hash_token(normalise_code(code)))
    if gateway is None:
        raise Unauthorized("Unknown enrolment code. Ask the charity's admin for a new one.")
    if gateway.enrolment_expires_at is None or gateway.enrolment_expires_at <= now:
        raise Conflict("This enrolment code has expired. Ask the charity's admin for a new one.")
    token = new_token("ngw")
    gateway.token_hash = hash_token(token)
    gateway.enrolment_code_hash = None
    gateway.enrolment_expires_at = None
    gateway.enrolled_at = now
    gateway.revoked_at = None
    return gateway, token
