"""The texts people read before and after opting in: consent (versioned) and the privacy notice, DE and EN.

Plain text only; `mobile_api/pages.py` escapes and renders them as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    language: str
    title: str
    lead: str
    sections: tuple[Section, ...]
    links: tuple[tuple[str, str], ...] = field(default=())  # (label, href)
