"""Sets of page indices stored as sorted extents, so state grows with events, not pages.

A shmem file's pages, the page-table regions of an mm and the pages a VMA has mapped are all
`ExtentMap`s: disjoint half-open runs `[start, end)` each tagged with a small integer owner (for a
file page: which memcg it is charged to and which node holds it). A 1 TiB sparse file with a
handful of populated runs costs a few hundred bytes, and every query is a binary search.

The runs are kept in three Python lists, so that the one-page operations of the fault path
(`has`, a one-page `fill`) cost a `bisect` and a list splice rather than numpy calls on tiny
arrays. Queries over many pages at once (`contains`) use numpy arrays
built from the lists on first use and kept until the next change. `count` sums the runs of a
range directly when they are few and keeps prefix sums for ranges over many.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from itertools import accumulate

import numpy as np

# Above this many new runs, `add_pages` merges with numpy instead of one splice per run.
_SPLICE_RUNS = 16
# Up to this many runs in a range, `count` sums them rather than keep prefix sums current.
_DIRECT_RUNS = 64


class ExtentMap:
    """Disjoint, sorted runs of pages, each run carrying an owner tag (an int)."""

    __slots__ = ("_s", "_e", "_o", "_n", "_cum", "_arr")

    def __init__(self) -> None:
        self._s: list[int] = []
        self._e: list[int] = []
        self._o: list[int] = []
        self._n = 0
        self._cum: list[int] = [0]
        self._arr: tuple[np.ndarray, np.ndarray] | None = None

    # -- queries -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def nr_extents(self) -> int:
        """How many runs the map holds (its memory cost)."""
        return len(self._s)

    def _prefix(self) -> list[int]:
        """Pages in the runs before run i, for i in 0..nr_extents.

        After a change the sums stay valid up to the first run changed, and are extended from
        there when next needed.
        """
        cum = self._cum
        k = len(cum) - 1
        if k < len(self._s):
            s, e = self._s, self._e
            cum.extend(accumulate((e[i] - s[i] for i in range(k, len(s))), initial=cum[k]))
            del cum[k + 1]  # `initial` repeated cum[k]
        return cum

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends as numpy arrays (built after a change)."""
        if self._arr is None:
            self._arr = (np.asarray(self._s, dtype=np.int64), np.asarray(self._e, dtype=np.int64))
        return self._arr

    def count(self, a: int, b: int) -> int:
        """Pages present in `[a, b)`.

        The runs inside are summed directly (two C-level sums over a slice) when there are few;
        the prefix sums serve a range over many runs.
        """
        s = self._s
        if b <= a or not s:
            return 0
        e = self._e
        lo = bisect_right(e, a)  # the first run ending after a
        hi = bisect_left(s, b, lo)  # the first run starting at or after b
        k = hi - lo
        if k <= 0:
            return 0
        if k == 1:
            return min(e[lo], b) - max(s[lo], a)
        if k <= _DIRECT_RUNS:
            total = sum(e[lo:hi]) - sum(s[lo:hi])
        else:
            cum = self._cum if len(self._cum) > len(s) else self._prefix()
            total = cum[hi] - cum[lo]
        if s[lo] < a:
            total -= a - s[lo]
        if e[hi - 1] > b:
            total -= e[hi - 1] - b
        return total

    def holes(self, a: int, b: int) -> int:
        """Pages absent in `[a, b)`."""
        return max(0, b - a) - self.count(a, b)

    def contains(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask: which of the page indices `idx` are present."""
        if not self._s:
            return np.zeros(np.shape(idx), dtype=bool)
        s, e = self._arrays()
        i = np.searchsorted(s, idx, side="right") - 1
        return (i >= 0) & (idx < e[np.maximum(i, 0)])

    def last(self) -> int:
        """The highest page present, -1 when empty."""
        return self._e[-1] - 1 if self._e else -1

    def has(self, page: int) -> bool:
        """Whether one page is present."""
        i = bisect_right(self._s, page) - 1
        return i >= 0 and page < self._e[i]

    def owner_of(self, page: int) -> int | None:
        """The owner tag of a present page, None for a hole."""
        i = bisect_right(self._s, page) - 1
        if i >= 0 and page < self._e[i]:
            return self._o[i]
        return None

    def first_present(self, a: int, b: int) -> int | None:
        """The lowest present page in `[a, b)`, or None when there is none."""
        i = bisect_right(self._e, a)
        if i < len(self._s) and self._s[i] < b:
            return max(self._s[i], a)
        return None

    def hole_runs(self, a: int, b: int) -> list[tuple[int, int]]:
        """The absent runs inside `[a, b)`, in order."""
        runs: list[tuple[int, int]] = []
        pos = a
        for s, e, _ in self.runs(a, b):
            if s > pos:
                runs.append((pos, s))
            pos = e
        if pos < b:
            runs.append((pos, b))
        return runs

    def runs(self, a: int, b: int) -> list[tuple[int, int, int]]:
        """The present runs clipped to `[a, b)`: (start, end, owner)."""
        lo = bisect_right(self._e, a)
        hi = bisect_left(self._s, b)
        s, e, o = self._s, self._e, self._o
        return [(max(s[i], a), min(e[i], b), o[i]) for i in range(lo, hi)]

    def last_hole_before(self, a: int, x: int) -> int | None:
        """The highest absent page in `[a, x)`, or None when `[a, x)` is fully present."""
        if x <= a:
            return None
        i = bisect_right(self._s, x - 1) - 1
        page = x - 1
        while page >= a:
            if i < 0 or page >= self._e[i]:
                return page
            page = self._s[i] - 1
            i -= 1
        return None

    def by_owner(self) -> Counter[int]:
        """Pages present per owner tag."""
        c: Counter[int] = Counter()
        for s, e, o in zip(self._s, self._e, self._o, strict=True):
            c[o] += e - s
        return c

    def copy(self) -> ExtentMap:
        """An independent copy."""
        m = ExtentMap()
        m._s, m._e, m._o, m._n = list(self._s), list(self._e), list(self._o), self._n
        m._cum, m._arr = list(self._cum), self._arr  # the arrays are replaced, never mutated
        return m

    # -- updates -------------------------------------------------------------------------------
    def fill(self, a: int, b: int, owner: int) -> int:
        """Make every absent page in `[a, b)` present with `owner`; returns how many were added."""
        if b <= a:
            return 0
        s, e, o = self._s, self._e, self._o
        # The runs that overlap or touch [a, b]: the only ones the new pages can merge with.
        lo = bisect_left(e, a)
        hi = bisect_right(s, b, lo)
        if hi == lo:  # nothing near: a run of its own
            s.insert(lo, a)
            e.insert(lo, b)
            o.insert(lo, owner)
            self._changed(b - a, lo)
            return b - a
        if hi == lo + 1 and o[lo] == owner:  # one neighbour of the same owner: widen it
            rs, re_ = s[lo], e[lo]
            added = (b - a) - max(0, min(re_, b) - max(rs, a))
            if added:
                s[lo], e[lo] = min(rs, a), max(re_, b)
                self._changed(added, lo)
            return added
        ns: list[int] = []
        ne: list[int] = []
        no: list[int] = []
        added = 0
        pos = a

        def put(rs: int, re_: int, ro: int) -> None:
            if ns and ne[-1] == rs and no[-1] == ro:
                ne[-1] = re_
            else:
                ns.append(rs)
                ne.append(re_)
                no.append(ro)

        for i in range(lo, hi):
            if s[i] > pos and pos < b:
                put(pos, min(s[i], b), owner)
                added += min(s[i], b) - pos
            put(s[i], e[i], o[i])
            pos = max(pos, e[i])
        if pos < b:
            put(pos, b, owner)
            added += b - pos
        if added:
            s[lo:hi], e[lo:hi], o[lo:hi] = ns, ne, no
            self._changed(added, lo)
        return added

    def add_pages(self, idx: np.ndarray, owner: int) -> int:
        """Make the given absent page indices present with `owner`; returns how many were added.

        Pages already present are left with their owner. `idx` may be in any order.
        """
        if len(idx) == 0:
            return 0
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) > 1 and not np.all(idx[1:] > idx[:-1]):
            idx = np.sort(idx)
            idx = idx[np.concatenate(([True], idx[1:] != idx[:-1]))]
        idx = idx[~self.contains(idx)]
        if len(idx) == 0:
            return 0
        brk = np.flatnonzero(np.diff(idx) != 1) + 1
        rs = idx[np.concatenate(([0], brk))]
        re_ = idx[np.concatenate((brk - 1, [len(idx) - 1]))] + 1
        if len(rs) <= _SPLICE_RUNS:
            for a, b in zip(rs.tolist(), re_.tolist(), strict=True):
                self.fill(a, b, owner)
            return len(idx)
        self._merge_in(rs, re_, owner)
        self._changed(len(idx), 0)
        return len(idx)

    def remove(self, a: int, b: int) -> Counter[int]:
        """Make `[a, b)` absent; returns the pages removed per owner tag."""
        removed: Counter[int] = Counter()
        if b <= a or not self._s:
            return removed
        s, e, o = self._s, self._e, self._o
        lo = bisect_right(e, a)
        hi = bisect_left(s, b)
        if lo >= hi:
            return removed
        ks: list[int] = []
        ke: list[int] = []
        ko: list[int] = []
        total = 0
        for i in range(lo, hi):
            n = min(e[i], b) - max(s[i], a)
            removed[o[i]] += n
            total += n
            if s[i] < a:
                ks.append(s[i])
                ke.append(a)
                ko.append(o[i])
            if e[i] > b:
                ks.append(b)
                ke.append(e[i])
                ko.append(o[i])
        s[lo:hi], e[lo:hi], o[lo:hi] = ks, ke, ko
        self._changed(-total, lo)
        return removed

    def clear(self) -> Counter[int]:
        """Remove every page; returns the pages removed per owner tag."""
        removed = self.by_owner()
        self._s, self._e, self._o = [], [], []
        self._n = 0
        self._cum, self._arr = [0], None
        return removed

    def _changed(self, delta: int, first: int) -> None:
        """`delta` pages were added (or removed); runs from index `first` on changed."""
        self._n += delta
        del self._cum[first + 1:]
        self._arr = None

    def _merge_in(self, rs: np.ndarray, re_: np.ndarray, owner: int) -> None:
        """Merge many new disjoint runs (none overlapping a present page) in one sort."""
        starts = np.concatenate((np.asarray(self._s, dtype=np.int64), rs))
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        ends = np.concatenate((np.asarray(self._e, dtype=np.int64), re_))[order]
        owners = np.concatenate((np.asarray(self._o, dtype=np.int64),
                                 np.full(len(rs), owner, dtype=np.int64)))[order]
        # Join a run to its predecessor when they touch and share an owner.
        join = np.zeros(len(starts), dtype=bool)
        join[1:] = (starts[1:] == ends[:-1]) & (owners[1:] == owners[:-1])
        if join.any():
            head = ~join
            last = np.flatnonzero(np.concatenate((head[1:], [True])))
            starts, owners, ends = starts[head], owners[head], ends[last]
        self._s, self._e, self._o = starts.tolist(), ends.tolist(), owners.tolist()
