"""Intervals and tests for failure rates: Wilson intervals for one rate, Newcombe's interval for
the difference of two paired rates, McNemar's exact test.

Pure functions of counts (no pandas): the frames in `summary.py` call them per group. Each is
checked against scipy in tests/test_stats.py.
"""

from __future__ import annotations

import math
from typing import NamedTuple

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95% intervals


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (Wilson 1927): the p whose score test
    does not reject, `(p_hat + z²/2n ± z·sqrt(p_hat(1-p_hat)/n + z²/4n²)) / (1 + z²/n)`.

    Unlike the Wald interval it stays inside [0, 1] and is not empty at k = 0 or k = n, which
    is where mitigations live (no run failed). n = 0 gives (0, 1): nothing is known.
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is not between 0 and n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo, hi = centre - half, centre + half
    # at k = 0 (k = n) the bound is exactly 0 (1); the formula gives it up to rounding
    return (0.0 if k == 0 else max(0.0, lo)), (1.0 if k == n else min(1.0, hi))


class PairedDifference(NamedTuple):
    """The difference p1 - p2 of two paired proportions, with its interval."""

    diff: float
    low: float
    high: float


def paired_difference_interval(both: int, first_only: int, second_only: int, neither: int,
                               z: float = Z95) -> PairedDifference:
    """Newcombe's hybrid score interval for p1 - p2 from paired data: method 10 of
    R. G. Newcombe, "Improved confidence intervals for the difference between binomial
    proportions based on paired data", Statistics in Medicine 17 (1998) 2635-2650.

    The table is a = `both`, b = `first_only`, c = `second_only`, d = `neither` (n pairs);
    p1 = (a+b)/n, p2 = (a+c)/n, and p1 - p2 = (b-c)/n. With (l1, u1), (l2, u2) the Wilson
    intervals of p1 and p2, the limits are
    `p1-p2 - sqrt((p1-l1)² - 2φ(p1-l1)(u2-p2) + (u2-p2)²)` and
    `p1-p2 + sqrt((p2-l2)² - 2φ(p2-l2)(u1-p1) + (u1-p1)²)`,
    where φ is the correlation of the pairs, `(ad-bc)/sqrt((a+b)(c+d)(a+c)(b+d))`, with the
    paper's continuity correction: ad-bc is lowered by n/2 when positive (to 0 if that makes it
    negative), and φ = 0 when a margin is 0 (it reproduces the paper's Table II). Its coverage
    stays close to 95% for small n and at proportions near 0 or 1, where the Wald interval
    collapses to a point.
    """
    a, b, c, d = both, first_only, second_only, neither
    n = a + b + c + d
    if n <= 0:
        return PairedDifference(0.0, -1.0, 1.0)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        cross: float = a * d - b * c
        if cross > 0:
            cross = max(0.0, cross - n / 2)
        phi = cross / math.sqrt(margins)
    diff = p1 - p2
    lower = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                                 + (u2 - p2) ** 2))
    upper = diff + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)
                                 + (u1 - p1) ** 2))
    return PairedDifference(diff, max(-1.0, lower), min(1.0, upper))


def mcnemar_exact_p(b: int, c: int) -> float:
    """McNemar's exact test (two-sided): under "both policies fail equally often" each
    discordant pair is one way or the other with probability 1/2, so min(b, c) is binomial
    (b+c, 1/2); the p-value is twice its lower tail, capped at 1. With no discordant pair
    nothing tells the two apart: p = 1.
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)
