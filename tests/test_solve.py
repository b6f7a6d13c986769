"""The bulk step's search (engine/solve.py): the largest prefix that fits, in few probes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simulator.engine.solve import largest_fit


@given(limit=st.integers(0, 1 << 40), frac=st.floats(0, 1),
       hint=st.one_of(st.none(), st.integers(-5, 1 << 41)))
def test_largest_fit_finds_the_last_page_that_fits(limit, frac, hint):
    """Whatever the hint, the answer is the threshold of the monotone predicate."""
    t = int(limit * frac)
    calls = []

    def fits(x):
        calls.append(x)
        return x <= t

    assert largest_fit(limit, fits, hint) == t
    assert all(0 <= x <= limit for x in calls)


def test_a_hint_of_zero_at_a_limit_costs_two_probes():
    """At a limit nothing fits and the proportional guess is 0: fits(limit), then fits(1)."""
    calls = []

    def fits(x):
        calls.append(x)
        return x == 0

    assert largest_fit(1 << 15, fits, 0) == 0
    assert calls == [1 << 15, 1]


def test_a_good_hint_brackets_the_answer_in_a_few_probes():
    calls = []

    def fits(x):
        calls.append(x)
        return x <= 32

    assert largest_fit(32785, fits, 31) == 32
    assert len(calls) <= 6
