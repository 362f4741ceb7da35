"""Names and labels people type: surrounding spaces go, and nothing but spaces is refused."""

from __future__ import annotations

from typing import Any, Final

# For the OpenAPI schema of such a field: at least one character that is not a space.
NOT_BLANK: Final[dict[str, Any]] = {"pattern": r"\S"}


def not_blank(value: str | None) -> str | None:
    """The value without surrounding whitespace; a value of only whitespace is refused (null stays null)."""
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank: it has nothing but spaces")
    return stripped
