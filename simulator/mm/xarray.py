"""The page cache's xarray nodes: how many a file's entries need, and who was charged for them.

Models the shape of `mapping->i_pages` (lib/xarray.c, v6.18): a tree of `struct xa_node`s of
64 slots (XA_CHUNK_SHIFT 6), 576 bytes each from the `radix_tree_node` slab. The page cache's
xarray has XA_FLAGS_ACCOUNT (`address_space_init_once`), so `xas_alloc`/`xas_nomem` allocate
nodes with __GFP_ACCOUNT: each node is charged, by the byte, to the memcg of the task that
inserts the entry needing it (the faulting, writing or fallocating task), and stays charged
to that memcg until the node is freed, whoever later uses the file.

The tree's shape follows from the indices holding an entry (a folio, or a swap entry), S:
its height h is the least with max(S) < 64^h (a lone entry at index 0 lives in the head, no
node), and level l < h (level 0 holding the entries) has one node per 64^(l+1)-aligned block
of indices that holds an entry of S. `xas_expand` adds levels on top as max(S) grows, and
`xas_shrink`/`xas_delete_node` free nodes as entries go.

Kept per file: for each level below the height, its nodes: the blocks holding an entry, as an
ExtentMap whose owner tag says which memcg was charged for the node (`Machine.memcg_tag`).
Above the height every entry lies in block 0, so nothing needs keeping there: a growing tree
makes the node over the old entries on each new level, a shrinking one frees whole levels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .extents import ExtentMap

XA_CHUNK_SHIFT = 6
XA_NODE_BYTES = 576  # sizeof(struct xa_node) on 64-bit
XA_LEVELS = 6  # enough for 64^6 = 2^36 pages (256 TiB of 4 KiB pages)


def xa_height(max_index: int) -> int:
    """Levels of nodes an xarray whose highest entry is `max_index` has (-1: empty, 0 nodes)."""
    h = 0
    while max_index >= 1 << (XA_CHUNK_SHIFT * h):
        h += 1
    return h


def level_shift(level: int) -> int:
    """Index bits a node at `level` covers (level 0 holds the entries: 64 indices)."""
    return XA_CHUNK_SHIFT * (level + 1)


@dataclass(eq=False)
class XaShape:
    """The xa_nodes of one file's page cache: per level, the blocks holding an entry."""

    levels: list[ExtentMap] = field(
        default_factory=lambda: [ExtentMap() for _ in range(XA_LEVELS)])

    def nodes(self, max_index: int) -> int:
        """Nodes the tree has when its highest entry is `max_index`."""
        return sum(len(self.levels[lv]) for lv in range(xa_height(max_index)))

    def matches(self, runs: list[tuple[int, int]], max_index: int) -> bool:
        """Whether the nodes kept are exactly those the entries' runs `[s, e)` need."""
        for lv in range(XA_LEVELS):
            want = ExtentMap()
            if lv < xa_height(max_index):
                s = level_shift(lv)
                for a, b in runs:
                    want.fill(a >> s, ((b - 1) >> s) + 1, 0)
            if blocks(self.levels[lv]) != blocks(want):
                return False
        return True

    def charged(self, max_index: int) -> Counter[int]:
        """The tree's nodes per memcg tag charged for them."""
        out: Counter[int] = Counter()
        for lv in range(xa_height(max_index)):
            out += self.levels[lv].by_owner()
        return out


def blocks(lvl: ExtentMap) -> list[tuple[int, int]]:
    """A level's blocks as runs, whatever memcg each node was charged to."""
    out: list[tuple[int, int]] = []
    for a, b, _ in lvl.runs(0, 1 << 62):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def xa_new_nodes(xa: XaShape, max_index: int, a: int, b: int) -> int:
    """Nodes that entries at every index of `[a, b)` would add to a tree whose highest entry is
    `max_index` (-1 when empty): the empty blocks they occupy on every level below the new
    height, and, for each level the height grows by, the node over the old entries.
    Monotone in b, which the bulk engine's search relies on."""
    if b <= a:
        return 0
    last = b - 1
    h0 = xa_height(max_index)
    h1 = xa_height(last) if last > max_index else h0
    new = 0
    for lv in range(h1):
        s = level_shift(lv)
        r0, r1 = a >> s, (last >> s) + 1
        if lv < h0:
            new += (r1 - r0) - xa.levels[lv].count(r0, r1)
        else:  # a new level: one node per block, the old entries' block 0 counted below
            new += (r1 - r0) - (r0 == 0 and max_index >= 0)
    if max_index >= 0:
        new += h1 - h0
    return new


def xa_insert(xa: XaShape, max_index: int, a: int, b: int, tag: int) -> int:
    """Record entries at every index of `[a, b)` (new nodes charged to memcg `tag`); returns
    the nodes created. `max_index` is the highest entry before."""
    if b <= a:
        return 0
    new = xa_new_nodes(xa, max_index, a, b)
    h0, h1 = xa_height(max_index), xa_height(max(max_index, b - 1))
    for lv in range(h1):
        s = level_shift(lv)
        if lv >= h0 and max_index >= 0:
            xa.levels[lv].fill(0, 1, tag)  # the node over the old entries (`xas_expand`)
        xa.levels[lv].fill(a >> s, ((b - 1) >> s) + 1, tag)
    return new


def xa_erase(
    xa: XaShape, a: int, b: int, max_before: int, max_after: int,
    entries: Callable[[int, int], int],
) -> Counter[int]:
    """Forget the entries of `[a, b)` (all gone now; `entries(lo, hi)` counts those left):
    returns the nodes freed, per memcg tag charged for them.

    A block empties when no entry is left in it (`xas_delete_node`); the levels at or above
    the new height go whole (`xas_shrink`).
    """
    freed: Counter[int] = Counter()
    if b <= a:
        return freed
    h0, h1 = xa_height(max_before), xa_height(max_after)
    for lv in range(h0):
        lvl = xa.levels[lv]
        if lv >= h1:
            freed += lvl.clear()
            continue
        s = level_shift(lv)
        r0, r1 = a >> s, ((b - 1) >> s) + 1
        # Blocks wholly inside [a, b) are empty now; the two edge blocks only if nothing is left.
        in0, in1 = (a + (1 << s) - 1) >> s, b >> s
        if in1 > in0:
            freed += lvl.remove(in0, in1)
        for r in {r0, r1 - 1}:
            if not (in0 <= r < in1) and lvl.has(r) and not entries(r << s, (r + 1) << s):
                freed += lvl.remove(r, r + 1)
    return freed


def xa_new_nodes_seq(xa: XaShape, max_index: int, idx: np.ndarray) -> np.ndarray:
    """Nodes each entry adds when entries go in at `idx` one after another (in that order,
    none present yet): the vectorised `xa_new_nodes` of an explicit page sequence.

    A block's node is made by the first entry in it, or, on a level the tree does not have
    yet, by the entry that grows the tree to that height; so is the node over the old entries.
    """
    n = len(idx)
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out
    tops = np.maximum.accumulate(np.maximum(idx, max_index))
    height = np.zeros(n, dtype=np.int64)
    for lv in range(XA_LEVELS + 1):
        height += tops >= (1 << (XA_CHUNK_SHIFT * lv))
    h0 = xa_height(max_index)
    for lv in range(XA_LEVELS):
        grown = np.flatnonzero(height > lv)
        if len(grown) == 0:
            break
        t = int(grown[0])  # the entry from which the tree has this level
        uniq, first = np.unique(idx >> level_shift(lv), return_index=True)
        if lv < h0:
            new = ~xa.levels[lv].contains(uniq)
        else:  # a new level: its block 0 is the old entries' node, made at t below
            new = ~((uniq == 0) & (max_index >= 0))
            if max_index >= 0:
                out[t] += 1
        np.add.at(out, np.maximum(first[new], t), 1)
    return out


def xa_insert_indices(xa: XaShape, max_index: int, idx: np.ndarray, tag: int) -> int:
    """`xa_insert` for entries at the indices `idx` (any order, none present yet)."""
    if len(idx) == 0:
        return 0
    new = int(xa_new_nodes_seq(xa, max_index, idx).sum())
    h0, h1 = xa_height(max_index), xa_height(max(max_index, int(idx.max())))
    for lv in range(h1):
        if lv >= h0 and max_index >= 0:
            xa.levels[lv].fill(0, 1, tag)
        xa.levels[lv].add_pages(np.unique(idx >> level_shift(lv)), tag)
    return new
