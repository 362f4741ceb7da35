"""Open data: k-anonymity that an attacker cannot undo from the published totals, the public URLs, and an
export with every cell below k publishing nothing but its description."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from server.impact.disclosure import K, Table, protect
from server.sites.models import Site
from tests.conftest import Clock
from tests.impact_world import open_street, seed_history
from tests.world import opt_in


def recoverable(table: Table, hidden: set[tuple[int, int]]) -> dict[tuple[int, int], Fraction]:
    """Every withheld cell an attacker can work out from what is published: the row, column and grand totals
    as equations (a total is the sum of its line), differences of any of them (linear algebra over the
    rationals), and counts being at least zero (a line whose withheld cells must sum to zero). Repeats until
    nothing more comes out."""
    rows, columns = table.rows, table.columns
    lines = [[(r, c) for c in range(columns)] + [(r, columns)] for r in range(rows + 1)]
    lines += [[(r, c) for r in range(rows)] + [(rows, c)] for c in range(columns + 1)]
    known: dict[tuple[int, int], Fraction] = {
        cell: Fraction(v) for cell, v in table.values.items() if cell not in hidden
    }
    found: dict[tuple[int, int], Fraction] = {}
    while True:
        unknown = sorted(cell for cell in table.values if cell not in known)
        index = {cell: n for n, cell in enumerate(unknown)}
        equations = []  # coefficients over the unknowns, then the constant: sum(coef * x) = constant
        for line in lines:
            *parts, total = line
            coefficients = [Fraction(0)] * len(unknown)
            constant = Fraction(0)
            for cell, sign in [*((p, 1) for p in parts), (total, -1)]:
                if cell in known:
                    constant -= sign * known[cell]
                else:
                    coefficients[index[cell]] += sign
            if any(coefficients):
                equations.append([*coefficients, constant])
        new = _determined(equations, unknown)
        for coefficients in equations:  # non-negativity: withheld cells of one sign summing to zero
            signs = {c > 0 for c in coefficients[:-1] if c}
            if len(signs) == 1 and coefficients[-1] == 0:
                new |= {unknown[n]: Fraction(0) for n, c in enumerate(coefficients[:-1]) if c}
        if not new:
            return found
        found |= new
        known |= new


def _determined(equations: list[list[Fraction]], unknown: list[tuple[int, int]]) -> dict:
    """Unknowns whose unit vector is in the row space: rows of the reduced echelon form with one entry."""
    matrix = [row[:] for row in equations]
    pivot_row = 0
    width = len(unknown)
    for column in range(width):
        pivot = next((r for r in range(pivot_row, len(matrix)) if matrix[r][column] != 0), None)
        if pivot is None:
            continue
        matrix[pivot_row], matrix[pivot] = matrix[pivot], matrix[pivot_row]
        lead = matrix[pivot_row][column]
        matrix[pivot_row] = [value / lead for value in matrix[pivot_row]]
        for r in range(len(matrix)):
            if r != pivot_row and matrix[r][column] != 0:
                factor = matrix[r][column]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[pivot_row], strict=True)]
        pivot_row += 1
    out = {}
    for row in matrix[:pivot_row]:
        entries = [n for n in range(width) if row[n] != 0]
        if len(entries) == 1:
            out[unknown[entries[0]]] = row[-1] / row[entries[0]]
    return out


def test_the_attacker_recovers_a_cell_left_alone_by_primary_suppression():
    """The attacker works: with only the small cells withheld, a total gives one of them away."""
    table = Table.of(2, 3, {(0, 0): 3, (0, 1): 9, (0, 2): 7, (1, 0): 8, (1, 1): 6, (1, 2): 12})
    primary = {cell for cell, value in table.values.items() if value < K}
    assert primary == {(0, 0)}
    assert recoverable(table, primary) == {(0, 0): 3}


@pytest.mark.parametrize("seed", range(40))
def test_no_withheld_cell_can_be_recomputed_from_the_published_totals(seed):
    rng = random.Random(seed)
    rows, columns = rng.randint(1, 4), rng.randint(1, 8)
    # Small charities' numbers: mostly zeros and small counts, now and then a busy day.
    cells = {
        (r, c): rng.choice([0, 0, 0, 1, 2, 3, 4, 5, 6, 9, 14, 30])
        for r in range(rows)
        for c in range(columns)
    }
    table = Table.of(rows, columns, cells)
    hidden = protect(table)
    assert {cell for cell, value in table.values.items() if value < K} <= hidden
    assert recoverable(table, hidden) == {}, (rows, columns, cells)


def test_a_table_with_every_cell_below_k_withholds_everything():
    table = Table.of(1, 2, {(0, 0): 1, (0, 1): 2})
    assert protect(table) == set(table.values)


def test_open_data_is_public_for_opted_in_sites_and_publishes_only_metadata_when_all_is_small(
    quiet_client, session, clock: Clock
):
    street = open_street(quiet_client, session, clock)
    phone = opt_in(quiet_client)  # one passer-by, prompted: every count below k
    street.walk(phone, [5, 20])
    street.fold()
    url = "/open-data/v1/hospiz/daily.json"
    assert quiet_client.get(url).status_code == 404  # no site publishes yet
    session.get_one(Site, street.charity.site_id).open_data = True
    session.commit()
    clock.advance(86_400)  # the 25th is complete now
    answer = quiet_client.get(url)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["rows"] == []
    assert document["licence"] == "CC-BY-4.0"
    assert document["dct:license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert {entry["name"] for entry in document["data_dictionary"]} >= {"day", "seen", "prompted", "accepted"}
    assert answer.headers["cache-control"].startswith("public")
    again = quiet_client.get(url, headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    csv_answer = quiet_client.get("/open-data/v1/hospiz/daily.csv")
    assert csv_answer.status_code == 200
    assert csv_answer.content.decode("utf-8-sig").splitlines() == [
        "day,site_id,site_name,seen,prompted,accepted,confirmed"
    ]


def test_published_open_data_shows_what_reaches_k_and_withholds_the_rest(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)  # five passers-by on the 25th: seen reaches k, the rest does not
    street.fold()
    session.get_one(Site, street.charity.site_id).open_data = True
    session.commit()
    clock.advance(86_400)
    rows = quiet_client.get("/open-data/v1/hospiz/daily.json", params={"since": "2026-11-25"}).json()["rows"]
    cells = {(row["day"], row["site_name"]): row for row in rows}
    assert cells[("2026-11-25", "hospiz door")]["seen"] == 5
    assert cells[("2026-11-25", "hospiz door")]["prompted"] is None  # 3 < k
    assert all(row["prompted"] is None and row["accepted"] is None for row in rows)
