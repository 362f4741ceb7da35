"""The caller of the admin API and the tenancy filter every admin repository applies through it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, true

from server.core.const import Role
from server.core.errors import Forbidden, NotFound

Via = Literal["session", "token", "system"]
_RANK: dict[Role, int] = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: a user, their role per organisation, and how they signed in.

    Repositories take a Principal and filter by `visible(column)`, so an endpoint cannot forget tenancy;
    services call `require(org_id, role)` before a change. The operator sees and owns every organisation.
    """

    user_id: int
    email: str
    is_operator: bool
    roles: Mapping[int, Role] = field(default_factory=dict)
    via: Via = "session"
    credential_id: int | None = None  # the session's or token's row id
    scopes: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"

    def organisation_ids(self, minimum: Role = Role.VIEWER) -> list[int]:
        return sorted(org for org, role in self.roles.items() if _RANK[role] >= _RANK[minimum])

    def visible(self, column: Any, minimum: Role = Role.VIEWER) -> ColumnElement[bool]:
        """The WHERE clause restricting `column` (an organisation id) to what this caller may see."""
        if self.is_operator:
            return true()
        ids = self.organisation_ids(minimum)
        return column.in_(ids) if ids else false()

    def sees(self, organisation_id: int | None) -> bool:
        if self.is_operator:
            return True
        return organisation_id is not None and organisation_id in self.roles

    def role_in(self, organisation_id: int) -> Role | None:
        return Role.OWNER if self.is_operator else self.roles.get(organisation_id)

    def require(self, organisation_id: int, minimum: Role) -> None:
        """403 when the caller sees the organisation but lacks the role; 404 when they do not see it."""
        role = self.role_in(organisation_id)
        if role is None:
            raise NotFound("No such organisation, or it is not yours.")
        if _RANK[role] < _RANK[minimum]:
            raise Forbidden(f"This needs the {minimum.value} role in the organisation; you are {role.value}.")

    def require_operator(self) -> None:
        if not self.is_operator:
            raise Forbidden("Only the platform operator may do this.")
