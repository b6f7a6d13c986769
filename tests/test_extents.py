import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from simulator.mm.extents import ExtentMap


def as_set(m: ExtentMap) -> set[int]:
    return {p for s, e, _ in m.runs(0, 1 << 20) for p in range(s, e)}


ops = st.lists(
    st.tuples(st.sampled_from(["fill", "remove", "add"]), st.integers(0, 200), st.integers(0, 60),
              st.integers(0, 3)),
    max_size=40,
)


class TestExtentMap:
    def test_fill_counts_only_holes(self):
        """Filling a range adds only the pages that were absent."""
        m = ExtentMap()
        assert m.fill(10, 20, 1) == 10
        assert m.fill(15, 30, 2) == 10
        assert len(m) == 20 and m.holes(0, 40) == 20

    def test_owners_are_kept_per_run(self):
        """A page keeps the owner it was added with."""
        m = ExtentMap()
        m.fill(0, 4, 7)
        m.fill(4, 8, 9)
        assert m.owner_of(3) == 7 and m.owner_of(4) == 9 and m.owner_of(8) is None
        assert m.remove(2, 6) == {7: 2, 9: 2}

    def test_last_hole_before(self):
        """The highest absent page below x."""
        m = ExtentMap()
        m.fill(5, 10, 0)
        assert m.last_hole_before(0, 10) == 4
        assert m.last_hole_before(5, 10) is None
        assert m.last_hole_before(0, 12) == 11

    @given(ops)
    def test_behaves_like_a_set(self, seq):
        """Any sequence of fills, removals and additions matches a plain set of pages."""
        m, ref = ExtentMap(), set()
        for kind, a, n, owner in seq:
            if kind == "fill":
                new = set(range(a, a + n)) - ref
                assert m.fill(a, a + n, owner) == len(new)
                ref |= new
            elif kind == "remove":
                gone = set(range(a, a + n)) & ref
                assert sum(m.remove(a, a + n).values()) == len(gone)
                ref -= gone
            else:
                idx = np.arange(a, a + n, 3)
                new = set(idx.tolist()) - ref
                assert m.add_pages(idx, owner) == len(new)
                ref |= new
            assert as_set(m) == ref
            assert len(m) == len(ref)
            probe = np.arange(0, 300)
            assert m.contains(probe).tolist() == [p in ref for p in range(300)]
            for lo, hi in ((37, 150), (0, 300), (a, a + n), (a + 1, a + 2)):
                assert m.count(lo, hi) == len([p for p in ref if lo <= p < hi])

    def test_counting_over_many_runs_uses_the_same_rule(self):
        """A range over hundreds of runs counts the same as a few at a time."""
        m = ExtentMap()
        for p in range(0, 3000, 3):
            m.fill(p, p + 2, p % 5)
        for lo, hi in ((0, 3000), (1, 2999), (100, 2500), (4, 5)):
            want = sum(1 for p in range(lo, hi) if p % 3 != 2)
            assert m.count(lo, hi) == want
        m.remove(1000, 1500)
        assert m.count(0, 3000) == 2000 - sum(1 for p in range(1000, 1500) if p % 3 != 2)

    @given(ops)
    def test_punching_frees_exactly_the_resident_pages(self, seq):
        """Removing a range reports exactly the pages that were there, per owner."""
        m = ExtentMap()
        owners: dict[int, int] = {}
        for _, a, n, owner in seq:
            for p in range(a, a + n):
                owners.setdefault(p, owner)
            m.fill(a, a + n, owner)
        removed = m.remove(50, 120)
        want: dict[int, int] = {}
        for p, o in owners.items():
            if 50 <= p < 120:
                want[o] = want.get(o, 0) + 1
        assert dict(removed) == want
