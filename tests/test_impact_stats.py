"""Variant statistics against published values, not against our own output.

Expected numbers: statsmodels 0.15.0, `proportion_confint(x, n, alpha=0.05, method="wilson")` and
`confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb", compare="diff", alpha=0.05)`, run once
and copied here to six decimals. The Newcombe rows are also the examples of Newcombe (1998), "Interval
estimation for the difference between independent proportions", Statistics in Medicine 17, Table II,
method 10 (e.g. 56/70 - 48/80: 0.0524 to 0.3339). statsmodels is not a dependency of the project.
"""

from __future__ import annotations

import pytest

from server.impact.stats import MIN_PER_ARM, Interval, newcombe, verdict, wilson

WILSON = [
    # successes, trials, low, high
    (81, 263, 0.255289, 0.366210),
    (15, 148, 0.062386, 0.160487),
    (0, 20, 0.0, 0.161125),
    (1, 29, 0.006113, 0.171755),
    (29, 29, 0.883030, 1.0),
    (56, 70, 0.691834, 0.876953),
    (48, 80, 0.490455, 0.700382),
    (9, 10, 0.595850, 0.982124),
    (3, 10, 0.107791, 0.603222),
    (5, 56, 0.038742, 0.192560),
]

NEWCOMBE = [
    # successes b, trials b, successes a, trials a, low, high (of b - a)
    (56, 70, 48, 80, 0.052431, 0.333873),
    (9, 10, 3, 10, 0.170523, 0.809018),
    (6, 7, 2, 7, 0.058228, 0.806250),
    (5, 56, 0, 29, -0.038137, 0.192560),
    (0, 10, 0, 20, -0.161125, 0.277533),
    (0, 10, 0, 10, -0.277533, 0.277533),
    (10, 10, 0, 20, 0.679086, 1.0),
    (120, 1000, 100, 1000, -0.007492, 0.047551),
    (30, 200, 45, 200, -0.150985, 0.001717),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), WILSON)
def test_wilson_interval_matches_the_published_value(x, n, low, high):
    found = wilson(x, n)
    assert found.estimate == pytest.approx(x / n)
    assert (found.low, found.high) == (pytest.approx(low, abs=5e-7), pytest.approx(high, abs=5e-7))


@pytest.mark.parametrize(("xb", "nb", "xa", "na", "low", "high"), NEWCOMBE)
def test_newcombe_difference_interval_matches_the_published_value(xb, nb, xa, na, low, high):
    found = newcombe(xb, nb, xa, na)
    assert found.estimate == pytest.approx(xb / nb - xa / na)
    assert (found.low, found.high) == (pytest.approx(low, abs=5e-7), pytest.approx(high, abs=5e-7))


def test_no_trials_is_no_estimate_and_the_widest_interval():
    assert wilson(0, 0) == Interval(None, 0.0, 1.0)
    assert newcombe(0, 0, 3, 10) == Interval(None, -1.0, 1.0)


def test_a_difference_whose_interval_holds_zero_is_not_enough_data():
    # 120/1000 against 100/1000 looks better, but the interval (-0.0075, 0.0476) holds zero.
    said = verdict("A", "B", 1000, 1000, newcombe(120, 1000, 100, 1000))
    assert not said.distinguishable
    assert said.en == "Not enough data yet to tell variants A and B apart."
    assert said.de == "Noch nicht genug Daten, um die Varianten A und B zu unterscheiden."


def test_a_clear_difference_on_small_arms_is_still_not_enough_data():
    # 9/10 against 3/10: the interval excludes zero, but ten prompts an arm are noise-prone.
    difference = newcombe(9, 10, 3, 10)
    assert difference.low > 0
    assert not verdict("A", "B", 10, 10, difference).distinguishable


def test_a_difference_that_holds_is_said_with_its_interval_in_both_languages():
    difference = newcombe(56, 70, 48, 80)  # both arms above the minimum, interval 5.2 to 33.4 points
    assert min(70, 80) >= MIN_PER_ARM
    said = verdict("A", "B", 80, 70, difference)
    assert said.distinguishable
    assert said.en == (
        "Variant B was accepted more often than A: by 20.0 percentage points (95% interval 5.2 to 33.4)."
    )
    assert said.de == (
        "Variante B wurde öfter angenommen als A: um 20,0 Prozentpunkte (95-%-Intervall 5,2 bis 33,4)."
    )
    worse = verdict("A", "B", 70, 80, newcombe(48, 80, 56, 70))
    assert worse.en.startswith("Variant A was accepted more often than B: by 20.0")
