"""Honest statistics for A/B variants: Wilson score intervals for each rate, Newcombe's hybrid score
interval for their difference, and plain words that never call noise a winner."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

Z95: Final = 1.959963984540054  # the standard normal's 97.5th percentile
MIN_PER_ARM: Final = 30  # prompts per variant before any difference is reported


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float | None  # None when there is no observation
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """Wilson's score interval for a proportion (without continuity correction); [0, 1] for no trials."""
    if trials <= 0:
        return Interval(None, 0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError("successes must lie between 0 and trials")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Exact at the edges: the score interval reaches 0 (or 1) when nothing (or everything) succeeded.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(p, low, high)


def newcombe(successes_b: int, trials_b: int, successes_a: int, trials_a: int, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval (1998, method 10) for the difference of rates b - a."""
    b, a = wilson(successes_b, trials_b, z), wilson(successes_a, trials_a, z)
    if b.estimate is None or a.estimate is None:
        return Interval(None, -1.0, 1.0)
    difference = b.estimate - a.estimate
    low = difference - math.sqrt((b.estimate - b.low) ** 2 + (a.high - a.estimate) ** 2)
    high = difference + math.sqrt((b.high - b.estimate) ** 2 + (a.estimate - a.low) ** 2)
    return Interval(difference, max(-1.0, low), min(1.0, high))


@dataclass(frozen=True, slots=True)
class Verdict:
    distinguishable: bool
    en: str
    de: str


def _pp(value: float, decimal: str) -> str:
    return f"{abs(value) * 100:.1f}".replace(".", decimal)


def verdict(
    label_a: str,
    label_b: str,
    trials_a: int,
    trials_b: int,
    difference: Interval,
    min_per_arm: int = MIN_PER_ARM,
) -> Verdict:
    """Plain words on b - a: 'not enough data yet' until each arm has `min_per_arm` prompts and the 95%
    interval of the difference excludes zero."""
    enough = trials_a >= min_per_arm and trials_b >= min_per_arm
    if not enough or difference.estimate is None or difference.low <= 0 <= difference.high:
        return Verdict(
            False,
            f"Not enough data yet to tell variants {label_a} and {label_b} apart.",
            f"Noch nicht genug Daten, um die Varianten {label_a} und {label_b} zu unterscheiden.",
        )
    better, worse = (label_b, label_a) if difference.estimate > 0 else (label_a, label_b)
    low, high = sorted((abs(difference.low), abs(difference.high)))
    return Verdict(
        True,
        f"Variant {better} was accepted more often than {worse}: by {_pp(difference.estimate, '.')} "
        f"percentage points (95% interval {_pp(low, '.')} to {_pp(high, '.')}).",
        f"Variante {better} wurde öfter angenommen als {worse}: um {_pp(difference.estimate, ',')} "
        f"Prozentpunkte (95-%-Intervall {_pp(low, ',')} bis {_pp(high, ',')}).",
    )
