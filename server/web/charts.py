"""Bar charts drawn on the server: the geometry of horizontal bars, which templates/charts.html turns into an
SVG (no script, no asset from another host). Each chart has a table beside it for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

WIDTH: Final = 320  # the viewBox: about one unit per CSS pixel on a 375 px phone, so the text stays legible
ROW: Final = 40  # a label line above its bar
BAR: Final = 14
LABEL_GAP: Final = 18  # from a row's top to its bar's top
VALUE_ROOM: Final = 64  # right of the longest bar, for its number


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int | None  # None: not counted for this filter (shown as "–", no bar)
    shown: str  # the value as the page's language writes it
    y: int  # the label's baseline
    bar_y: int
    width: float
    value_x: float


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    bar_height: int

    @property
    def empty(self) -> bool:
        return not any(bar.value for bar in self.bars)


def bars(rows: Sequence[tuple[str, int | None, str]]) -> Chart:
    """Horizontal bars for (label, value, value as written), scaled to the largest value."""
    top = max((value for _, value, _ in rows if value), default=0)
    room = WIDTH - VALUE_ROOM
    out = []
    for n, (label, value, shown) in enumerate(rows):
        width = room * value / top if value and top else 0.0
        y = n * ROW
        out.append(
            Bar(
                label=label,
                value=value,
                shown=shown,
                y=y + 14,
                bar_y=y + LABEL_GAP,
                width=round(width, 1),
                value_x=round(width + 6, 1),
            )
        )
    return Chart(bars=out, width=WIDTH, height=max(ROW * len(rows), ROW), bar_height=BAR)
