"""Where a member sits in a JSON text, so that a message about a file can point at its line and column."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Final

_SPACE: Final = re.compile(r"[ \t\n\r]*")
_DECODER: Final = json.JSONDecoder()


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def locate(text: str, path: Sequence[str | int]) -> tuple[int, int]:
    """Line and column of the deepest part of `path` found in the valid JSON `text`: an object member's
    key, or an array item; the document's start when not even the first part is there."""
    start = _skip(text, 0)
    found = _find(text, start, path) if path else None
    return line_column(text, start if found is None else found)


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return match.end() if match else at


def _find(text: str, at: int, path: Sequence[str | int]) -> int | None:
    """Offset of the deepest part of non-empty `path` found in the value at `at`; None if its first is not."""
    member = _member(text, at, path[0])
    if member is None:
        return None
    key_at, value_at = member
    deeper = _find(text, value_at, path[1:]) if len(path) > 1 else None
    return key_at if deeper is None else deeper


def _member(text: str, at: int, part: str | int) -> tuple[int, int] | None:
    """Where member `part` of the object (or item of the array) at `at` starts, and where its value does."""
    found = None
    if text.startswith("{", at):
        at = _skip(text, at + 1)
        while not text.startswith("}", at):
            key, after_key = _DECODER.raw_decode(text, at)
            value_at = _skip(text, _skip(text, after_key) + 1)  # past the colon
            if key == str(part):
                found = (at, value_at)  # a repeated key: the last one counts, as for json.loads
            at = _next(text, value_at)
    elif text.startswith("[", at) and isinstance(part, int):
        at = _skip(text, at + 1)
        index = 0
        while not text.startswith("]", at):
            if index == part:
                return at, at
            at, index = _next(text, at), index + 1
    return found


def _next(text: str, value_at: int) -> int:
    """The start of the member or item after the value at `value_at`, or of the closing bracket."""
    at = _skip(text, _DECODER.raw_decode(text, value_at)[1])
    return _skip(text, at + 1) if text.startswith(",", at) else at
