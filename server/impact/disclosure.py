"""Small-cell suppression for published tables: no count below k, and none recomputable from the rest.

A table of counts (rows: sites, columns: days) is published with its totals: per row, per column and the
grand total. Every cell below k is suppressed (primary suppression), totals too. A suppressed cell could
still be worked out from a total and the other cells of its line, or from differences across lines, so more
cells are suppressed (complementary suppression) until every suppressed cell lies on a cycle of suppressed
cells (row, column, row, column) along which the table can be changed by one while every published number
stays the same and no count goes below zero. Then each suppressed cell has at least two values that fit
everything published, and nobody can say which is true.

In the table extended by its totals, a total enters its row's (or column's) equation with the opposite
sign of the cells it sums: so moving one along a cycle changes a total (a cell in exactly one margin) in the
opposite direction to its y-value's sign, which `_change` accounts for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

K: Final = 5

Cell = tuple[int, int]


@dataclass(slots=True)
class Table:
    """Counts by (row, column) for rows 0..rows-1 and columns 0..columns-1; row `rows` and column
    `columns` are the totals."""

    rows: int
    columns: int
    values: dict[Cell, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: int, columns: int, cells: Mapping[Cell, int]) -> Table:
        table = cls(rows, columns)
        for r in range(rows):
            for c in range(columns):
                table.values[(r, c)] = int(cells.get((r, c), 0))
        for r in range(rows):
            table.values[(r, columns)] = sum(table.values[(r, c)] for c in range(columns))
        for c in range(columns + 1):
            table.values[(rows, c)] = sum(table.values[(r, c)] for r in range(rows))
        return table

    def margin(self, cell: Cell) -> int:
        """+1 for an inner cell or the grand total, -1 for a row or column total."""
        single = (cell[0] == self.rows) != (cell[1] == self.columns)
        return -1 if single else 1


def _cycle(r: int, c: int, r2: int, c2: int) -> list[tuple[Cell, int]]:
    return [((r, c), 1), ((r, c2), -1), ((r2, c2), 1), ((r2, c), -1)]


def _movable(table: Table, cycle: list[tuple[Cell, int]]) -> bool:
    """Whether the counts can move by one along the cycle, one way or the other, staying at zero or above."""
    for step in (1, -1):
        if all(table.values[cell] + step * sign * table.margin(cell) >= 0 for cell, sign in cycle):
            return True
    return False


def protect(table: Table, k: int = K) -> set[Cell]:
    """The cells to suppress: every one below k, and as few more as this greedy search needs."""
    suppressed = {cell for cell, value in table.values.items() if value < k}
    in_row: dict[int, set[int]] = {r: set() for r in range(table.rows + 1)}
    in_column: dict[int, set[int]] = {c: set() for c in range(table.columns + 1)}
    for r, c in suppressed:
        in_row[r].add(c)
        in_column[c].add(r)

    def add(cell: Cell) -> None:
        suppressed.add(cell)
        in_row[cell[0]].add(cell[1])
        in_column[cell[1]].add(cell[0])

    for r, c in sorted(suppressed):
        if any(
            c2 in in_row[r2] and _movable(table, _cycle(r, c, r2, c2))
            for c2 in in_row[r] - {c}
            for r2 in in_column[c] - {r}
        ):
            continue  # on a cycle of suppressed cells already
        best: tuple[int, int, list[Cell]] | None = None
        for r2 in range(table.rows + 1):
            if r2 == r:
                continue
            for c2 in range(table.columns + 1):
                if c2 == c:
                    continue
                cycle = _cycle(r, c, r2, c2)
                if not _movable(table, cycle):
                    continue
                new = [cell for cell, _ in cycle if cell not in suppressed]
                cost = (sum(table.values[cell] for cell in new), len(new))
                if best is None or cost < best[:2]:
                    best = (*cost, new)
        if best is None:  # a table of one row or column: nothing to hide behind, so hide it all
            for cell in table.values:
                add(cell)
            break
        for cell in best[2]:
            add(cell)
    return suppressed
