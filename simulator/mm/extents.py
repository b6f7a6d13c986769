"""Sets of page indices stored as sorted extents, so state grows with events, not pages.

A shmem file's pages, the page-table regions of an mm and the pages a VMA has mapped are all
`ExtentMap`s: disjoint half-open runs `[start, end)` each tagged with a small integer owner (for a
file page: which memcg it is charged to and which node holds it). A 1 TiB sparse file with a
handful of populated runs costs a few hundred bytes, and every query is a binary search.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

_EMPTY = np.zeros(0, dtype=np.int64)


class ExtentMap:
    """Disjoint, sorted runs of pages, each run carrying an owner tag (an int)."""

    __slots__ = ("starts", "ends", "owners", "_cum")

    def __init__(self) -> None:
        self.starts = _EMPTY
        self.ends = _EMPTY
        self.owners = _EMPTY
        self._cum = np.zeros(1, dtype=np.int64)

    # -- queries -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._cum[-1])

    @property
    def nr_extents(self) -> int:
        """How many runs the map holds (its memory cost)."""
        return len(self.starts)

    def covered(self, x: int | np.ndarray) -> int | np.ndarray:
        """Pages present below `x` (vectorised over an array of x)."""
        i = np.searchsorted(self.starts, x, side="right") - 1
        if np.ndim(x) == 0:
            if i < 0:
                return 0
            return int(self._cum[i] + min(int(x), int(self.ends[i])) - self.starts[i])
        xi = np.asarray(x, dtype=np.int64)
        ic = np.maximum(i, 0)
        inside = np.minimum(xi, self.ends[ic] if len(self.ends) else xi) - (
            self.starts[ic] if len(self.starts) else xi
        )
        out = (self._cum[ic] if len(self.starts) else 0) + inside
        return np.where(i < 0, 0, out)

    def count(self, a: int, b: int) -> int:
        """Pages present in `[a, b)`."""
        if b <= a:
            return 0
        return int(self.covered(b)) - int(self.covered(a))

    def holes(self, a: int, b: int) -> int:
        """Pages absent in `[a, b)`."""
        return max(0, b - a) - self.count(a, b)

    def contains(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask: which of the page indices `idx` are present."""
        i = np.searchsorted(self.starts, idx, side="right") - 1
        if len(self.starts) == 0:
            return np.zeros(np.shape(idx), dtype=bool)
        ic = np.maximum(i, 0)
        return (i >= 0) & (idx < self.ends[ic])

    def has(self, page: int) -> bool:
        """Whether one page is present."""
        i = int(np.searchsorted(self.starts, page, side="right")) - 1
        return i >= 0 and page < int(self.ends[i])

    def owner_of(self, page: int) -> int | None:
        """The owner tag of a present page, None for a hole."""
        i = int(np.searchsorted(self.starts, page, side="right")) - 1
        if i >= 0 and page < int(self.ends[i]):
            return int(self.owners[i])
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
        lo = max(int(np.searchsorted(self.ends, a, side="right")), 0)
        hi = int(np.searchsorted(self.starts, b, side="left"))
        return [
            (max(int(self.starts[i]), a), min(int(self.ends[i]), b), int(self.owners[i]))
            for i in range(lo, hi)
        ]

    def last_hole_before(self, a: int, x: int) -> int | None:
        """The highest absent page in `[a, x)`, or None when `[a, x)` is fully present."""
        if x <= a:
            return None
        i = int(np.searchsorted(self.starts, x - 1, side="right")) - 1
        page = x - 1
        while page >= a:
            if i < 0 or page >= int(self.ends[i]):
                return page
            page = int(self.starts[i]) - 1
            i -= 1
        return None

    def by_owner(self) -> Counter[int]:
        """Pages present per owner tag."""
        c: Counter[int] = Counter()
        for o, n in zip(self.owners.tolist(), (self.ends - self.starts).tolist(), strict=True):
            c[o] += n
        return c

    def copy(self) -> ExtentMap:
        """An independent copy (arrays are replaced, never mutated, so sharing them is safe)."""
        m = ExtentMap()
        m.starts, m.ends, m.owners, m._cum = self.starts, self.ends, self.owners, self._cum
        return m

    # -- updates -------------------------------------------------------------------------------
    def fill(self, a: int, b: int, owner: int) -> int:
        """Make every absent page in `[a, b)` present with `owner`; returns how many were added."""
        holes = self.hole_runs(a, b)
        if not holes:
            return 0
        hs = np.array([h[0] for h in holes], dtype=np.int64)
        he = np.array([h[1] for h in holes], dtype=np.int64)
        self._merge_in(hs, he, np.full(len(hs), owner, dtype=np.int64))
        return int((he - hs).sum())

    def add_pages(self, idx: np.ndarray, owner: int) -> int:
        """Make the given absent page indices present with `owner`; returns how many were added.

        Pages already present are left with their owner. `idx` may be in any order.
        """
        if len(idx) == 0:
            return 0
        idx = np.unique(np.asarray(idx, dtype=np.int64))
        idx = idx[~self.contains(idx)]
        if len(idx) == 0:
            return 0
        brk = np.flatnonzero(np.diff(idx) != 1) + 1
        rs = idx[np.concatenate(([0], brk))]
        re_ = idx[np.concatenate((brk - 1, [len(idx) - 1]))] + 1
        self._merge_in(rs, re_, np.full(len(rs), owner, dtype=np.int64))
        return len(idx)

    def remove(self, a: int, b: int) -> Counter[int]:
        """Make `[a, b)` absent; returns the pages removed per owner tag."""
        removed: Counter[int] = Counter()
        if b <= a or len(self.starts) == 0:
            return removed
        lo = int(np.searchsorted(self.ends, a, side="right"))
        hi = int(np.searchsorted(self.starts, b, side="left"))
        if lo >= hi:
            return removed
        keep_s, keep_e, keep_o = [], [], []
        for i in range(lo, hi):
            s, e, o = int(self.starts[i]), int(self.ends[i]), int(self.owners[i])
            removed[o] += min(e, b) - max(s, a)
            if s < a:
                keep_s.append(s)
                keep_e.append(a)
                keep_o.append(o)
            if e > b:
                keep_s.append(b)
                keep_e.append(e)
                keep_o.append(o)
        arr = np.asarray
        self.starts = np.concatenate((self.starts[:lo], arr(keep_s, np.int64), self.starts[hi:]))
        self.ends = np.concatenate((self.ends[:lo], arr(keep_e, np.int64), self.ends[hi:]))
        self.owners = np.concatenate((self.owners[:lo], arr(keep_o, np.int64), self.owners[hi:]))
        self._recount()
        return removed

    def clear(self) -> Counter[int]:
        """Remove every page; returns the pages removed per owner tag."""
        removed = self.by_owner()
        self.starts = self.ends = self.owners = _EMPTY
        self._recount()
        return removed

    def _merge_in(self, s: np.ndarray, e: np.ndarray, o: np.ndarray) -> None:
        starts = np.concatenate((self.starts, s))
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        ends = np.concatenate((self.ends, e))[order]
        owners = np.concatenate((self.owners, o))[order]
        # Join a run to its predecessor when they touch and share an owner.
        join = np.zeros(len(starts), dtype=bool)
        join[1:] = (starts[1:] == ends[:-1]) & (owners[1:] == owners[:-1])
        if join.any():
            head = ~join
            group = np.cumsum(head) - 1
            new_ends = np.zeros(int(head.sum()), dtype=np.int64)
            np.maximum.at(new_ends, group, ends)
            starts, owners, ends = starts[head], owners[head], new_ends
        self.starts, self.ends, self.owners = starts, ends, owners
        self._recount()

    def _recount(self) -> None:
        cum = np.zeros(len(self.starts) + 1, dtype=np.int64)
        np.cumsum(self.ends - self.starts, out=cum[1:])
        self._cum = cum
