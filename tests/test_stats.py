"""The report's statistics against scipy and against first principles, on fixed inputs."""

import itertools
import math

import pytest

from analysis.stats import mcnemar_exact_p, paired_difference_interval, wilson_interval

stats = pytest.importorskip("scipy.stats", reason="scipy (the `dev` extra) is missing")

COUNTS = [(0, 1), (1, 1), (0, 10), (10, 10), (1, 10), (5, 10), (3, 7), (0, 200), (1, 200),
          (37, 200), (199, 200), (200, 200), (512, 1000)]


class TestWilsonInterval:
    @pytest.mark.parametrize(("k", "n"), COUNTS)
    def test_matches_scipy(self, k, n):
        """The same interval as scipy's binomtest(k, n).proportion_ci(method='wilson')."""
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        lo, hi = wilson_interval(k, n)
        assert lo == pytest.approx(ci.low, abs=1e-12)
        assert hi == pytest.approx(ci.high, abs=1e-12)

    def test_edges_are_exact(self):
        """No run failed: the interval starts at 0; every run failed: it ends at 1."""
        assert wilson_interval(0, 30)[0] == 0.0 and wilson_interval(30, 30)[1] == 1.0
        assert 0 < wilson_interval(0, 30)[1] < 0.12  # the "rule of three"'s neighbourhood
        assert wilson_interval(0, 0) == (0.0, 1.0)

    def test_other_levels(self):
        """z is the level's quantile: a 99% interval is scipy's 99% interval."""
        ci = stats.binomtest(7, 40).proportion_ci(confidence_level=0.99, method="wilson")
        lo, hi = wilson_interval(7, 40, z=stats.norm.ppf(0.995))
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-12)


class TestMcnemarExactP:
    @pytest.mark.parametrize(("b", "c"), [(0, 1), (1, 0), (0, 5), (5, 0), (3, 3), (2, 9),
                                          (9, 2), (40, 60), (0, 200), (17, 18)])
    def test_matches_scipy(self, b, c):
        """binomtest(b, b+c, 0.5).pvalue."""
        assert mcnemar_exact_p(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue,
                                                       rel=1e-12)

    def test_no_discordant_pair_is_p_1(self):
        """b = c = 0: nothing tells the two apart."""
        assert mcnemar_exact_p(0, 0) == 1.0


def newcombe_by_hand(a, b, c, d, z=1.959963984540054):
    """Method 10 spelt out from scipy's Wilson limits, as the paper's worked examples do."""
    n = a + b + c + d
    ci1 = stats.binomtest(a + b, n).proportion_ci(method="wilson")
    ci2 = stats.binomtest(a + c, n).proportion_ci(method="wilson")
    p1, p2 = (a + b) / n, (a + c) / n
    e, f, g, h = a + b, c + d, a + c, b + d
    ad_bc = a * d - b * c
    if 0 in (e, f, g, h):
        phi = 0.0
    elif ad_bc > n / 2:
        phi = (ad_bc - n / 2) / math.sqrt(e * f * g * h)
    elif ad_bc >= 0:
        phi = 0.0
    else:
        phi = ad_bc / math.sqrt(e * f * g * h)
    dl = math.sqrt((p1 - ci1.low) ** 2 - 2 * phi * (p1 - ci1.low) * (ci2.high - p2)
                   + (ci2.high - p2) ** 2)
    du = math.sqrt((p2 - ci2.low) ** 2 - 2 * phi * (p2 - ci2.low) * (ci1.high - p1)
                   + (ci1.high - p1) ** 2)
    return p1 - p2, p1 - p2 - dl, p1 - p2 + du


class TestPairedDifferenceInterval:
    @pytest.mark.parametrize("table", [(14, 5, 0, 22), (1, 1, 7, 12), (59, 6, 16, 80),
                                       (36, 12, 2, 0), (5, 5, 0, 0), (0, 0, 0, 30),
                                       (30, 0, 0, 0), (10, 0, 20, 0), (3, 40, 1, 156)])
    def test_is_method_10_on_scipy_wilson_limits(self, table):
        """The limits are Newcombe's square-and-add of the two margins' Wilson intervals with
        the continuity-corrected correlation."""
        got = paired_difference_interval(*table)
        assert tuple(got) == pytest.approx(newcombe_by_hand(*table), abs=1e-12)

    @pytest.mark.parametrize(("table", "low", "high"), [
        ((36, 12, 2, 0), 0.0569, 0.3404), ((18, 12, 2, 18), 0.0562, 0.3290),
        ((53, 0, 0, 1), -0.0729, 0.0729), ((0, 30, 0, 0), 0.8395, 1.0)])
    def test_the_papers_worked_examples(self, table, low, high):
        """Newcombe (1998), Table II, method 10, to the four decimals printed there: the first
        two tables differ only in their correlation (φ), the last two are at the edges."""
        got = paired_difference_interval(*table)
        assert got.low == pytest.approx(low, abs=5e-5) and got.high == pytest.approx(high, abs=5e-5)

    def test_sign_and_symmetry(self):
        """Swapping which policy is first negates the interval; no discordant pair, no
        difference, and the interval still has width."""
        d = paired_difference_interval(4, 9, 2, 85)
        e = paired_difference_interval(4, 2, 9, 85)
        assert d.diff == pytest.approx(0.07) and d.low < 0.07 < d.high
        assert (e.diff, e.low, e.high) == pytest.approx((-d.diff, -d.high, -d.low))
        z = paired_difference_interval(20, 0, 0, 80)
        assert z.diff == 0 and z.low < 0 < z.high

    def test_coverage_by_enumeration(self):
        """Its exact coverage, summed over every 2x2 table of 30 pairs, is close to 95% at a
        few true cell probabilities (Newcombe reports a mean near 0.95 for method 10); a
        Wald interval falls well short at the same points."""
        n = 30
        for probs in [(0.1, 0.1, 0.05, 0.75), (0.3, 0.2, 0.1, 0.4), (0.02, 0.08, 0.02, 0.88)]:
            true = probs[1] - probs[2]
            cover = wald = 0.0
            for a, b, c in itertools.product(range(n + 1), repeat=3):
                d = n - a - b - c
                if d < 0:
                    continue
                pr = (math.factorial(n) / (math.factorial(a) * math.factorial(b)
                                           * math.factorial(c) * math.factorial(d))
                      * probs[0] ** a * probs[1] ** b * probs[2] ** c * probs[3] ** d)
                ci = paired_difference_interval(a, b, c, d)
                cover += pr * (ci.low <= true <= ci.high)
                se = math.sqrt(max(0.0, (b + c) / n - ((b - c) / n) ** 2) / n)
                wald += pr * (abs((b - c) / n - true) <= 1.959964 * se)
            assert 0.925 < cover < 0.995, (probs, cover)
            assert wald < cover
