"""Admin API failures beyond the shared ones: preconditions, throttling and rule violations."""

from __future__ import annotations

from server.core.errors import NahbarError


class PreconditionFailed(NahbarError):
    status = 412
    code = "precondition_failed"


class PreconditionRequired(NahbarError):
    status = 428
    code = "precondition_required"


class TooManyAttempts(NahbarError):
    status = 429
    code = "too_many_attempts"


class RuleViolation(NahbarError):
    """A request that is well-formed but breaks a rule protecting the people prompted (422)."""

    status = 422
    code = "rule_violation"


class InsufficientScope(NahbarError):
    status = 403
    code = "insufficient_scope"


class CsrfFailed(NahbarError):
    status = 403
    code = "csrf_failed"
