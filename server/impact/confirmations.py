"""Confirmations from the charity: the funnel's last step, without the charity learning who the person is.

When a person follows a call to action, and the charity has a confirmation secret, the link to the charity's
page carries `nahbar_ref`, an opaque reference to that prompt (random to the charity: an HMAC of the prompt
under NAHBAR_SECRET_KEY). When the person completes the sign-up or donation, the charity's server posts the
reference back to POST /impact/v1/confirmations, signed with its secret the Standard Webhooks way. The
reference names no person and no prompt the charity could look up; a person who withdrew takes it along.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from server.core.const import Outcome, Role
from server.core.errors import Forbidden, NotFound, RuleViolation, Unauthorized
from server.core.security import KeySealer, hash_token
from server.impact import tally
from server.impact.models import ConfirmationSecret, PromptReference
from server.impact.schemas import (
    ConfirmationBody,
    ConfirmationResult,
    ConfirmationSecretPublic,
    ConfirmationState,
)
from server.prompts.models import PromptDecision
from server.tenancy.scope import Principal
from server.webhooks.service import new_secret

REF_PARAMETER: Final = "nahbar_ref"
_CONTEXT: Final = b"nahbar confirmation secret v1"
TOLERANCE: Final = timedelta(minutes=5)  # the Standard Webhooks default, either way of the server's clock


def reference(secret_key: str, decision_id: int) -> str:
    digest = hmac.digest(
        secret_key.encode(), b"nahbar prompt reference v1" + decision_id.to_bytes(8, "big"), "sha256"
    )
    return "nr_" + base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def link(
    session: Session, secret_key: str, decision: PromptDecision, organisation_id: int, url: str, now: datetime
) -> str:
    """The call to action's address, with the prompt's reference when the charity confirms sign-ups."""
    if decision.outcome != Outcome.PROMPTED or session.get(ConfirmationSecret, organisation_id) is None:
        return url
    ref = reference(secret_key, decision.id)
    if session.scalar(select(PromptReference.id).where(PromptReference.decision_id == decision.id)) is None:
        session.add(
            PromptReference(
                decision_id=decision.id,
                organisation_id=organisation_id,
                ref_hash=hash_token(ref),
                created_at=now,
            )
        )
        session.flush()
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != REF_PARAMETER]
    return urlunsplit(parts._replace(query=urlencode([*query, (REF_PARAMETER, ref)])))


def set_secret(
    session: Session,
    principal: Principal,
    organisation_id: int,
    secret_key: str,
    grace: timedelta,
    confirm_url: str,
    now: datetime,
) -> ConfirmationSecretPublic:
    """Turn confirmations on, or rotate the secret (the old one verifies for `grace` more)."""
    principal.require(organisation_id, Role.EDITOR)
    sealer = KeySealer(secret_key)
    secret = new_secret()
    row = session.get(ConfirmationSecret, organisation_id)
    if row is None:
        row = ConfirmationSecret(organisation_id=organisation_id, secret_sealed=b"", created_at=now)
        session.add(row)
        row.previous_sealed, row.previous_until = None, None
    elif grace > timedelta(0):
        row.previous_sealed, row.previous_until = row.secret_sealed, now + grace
    else:
        row.previous_sealed, row.previous_until = None, None
    row.secret_sealed = sealer.seal(secret.encode(), _CONTEXT)
    session.flush()
    return ConfirmationSecretPublic(
        organisation_id=organisation_id,
        secret=secret,
        previous_valid_until=row.previous_until,
        confirm_url=confirm_url,
    )


def secret_state(session: Session, principal: Principal, organisation_id: int) -> ConfirmationState:
    """Whether confirmations are on (never the secret: it was shown once)."""
    principal.require(organisation_id, Role.VIEWER)
    row = session.get(ConfirmationSecret, organisation_id)
    if row is None:
        return ConfirmationState(enabled=False, since=None, previous_valid_until=None)
    return ConfirmationState(enabled=True, since=row.created_at, previous_valid_until=row.previous_until)


def delete_secret(session: Session, principal: Principal, organisation_id: int) -> None:
    """Turn confirmations off: links carry no reference any more, and none is accepted."""
    principal.require(organisation_id, Role.EDITOR)
    row = session.get(ConfirmationSecret, organisation_id)
    if row is None:
        raise NotFound("Confirmations are not switched on for this organisation.")
    session.delete(row)


def confirm(
    session: Session, secret_key: str, body: bytes, headers: dict[str, str], now: datetime
) -> ConfirmationResult:
    """Record a signed confirmation, once per prompt."""
    try:  # the declared shape, parsed by pydantic: a deeply nested body is refused, not a crash
        ref = ConfirmationBody.model_validate_json(body).ref
    except ValidationError:
        raise RuleViolation(
            'Send {"ref": "..."} and nothing else: the nahbar_ref your page was opened with.',
            extra={"field": "ref"},
        ) from None
    found = session.scalar(select(PromptReference).where(PromptReference.ref_hash == hash_token(ref)))
    if found is None:
        raise NotFound("No prompt has this reference (or the person withdrew since).")
    row = session.get(ConfirmationSecret, found.organisation_id)
    if row is None:
        raise Forbidden("Confirmations are switched off for this organisation.")
    sealer = KeySealer(secret_key)
    keys = [sealer.open(row.secret_sealed, _CONTEXT).decode()]
    if row.previous_sealed is not None and row.previous_until is not None and row.previous_until > now:
        keys.append(sealer.open(row.previous_sealed, _CONTEXT).decode())
    if not _verifies(keys, body, headers, now):
        raise Unauthorized(
            "The signature does not verify: sign the exact body with your confirmation secret "
            "(webhook-id, webhook-timestamp within 5 minutes, webhook-signature)."
        )
    if found.confirmed_at is not None:
        return ConfirmationResult(status="already_confirmed")
    found.confirmed_at = now
    decision = session.get_one(PromptDecision, found.decision_id)
    tally.confirmed(session, decision, now)
    session.flush()
    return ConfirmationResult(status="confirmed")


def _verifies(keys: list[str], body: bytes, headers: dict[str, str], now: datetime) -> bool:
    """Standard Webhooks verification, its timestamp read against the server's clock (the library's own
    verify reads the machine's, which a test's or a replay's clock cannot move)."""
    msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    given = headers.get("webhook-signature")
    if not (msg_id and stamp and given):
        return False
    try:
        at = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(at - now) > TOLERANCE:
        return False
    expected = [Webhook(key).sign(msg_id, at, body).encode() for key in keys]
    return any(hmac.compare_digest(e, sig.encode()) for e in expected for sig in given.split(" "))
