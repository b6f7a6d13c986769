"""The page cache's xarray nodes: how many entries need, and what they cost a memcg."""

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from simulator.mm.memcontrol import MemCgroup, obj_stock_pages, obj_stock_refill, obj_stock_take
from simulator.mm.xarray import (
    XaShape,
    xa_erase,
    xa_height,
    xa_insert,
    xa_insert_indices,
    xa_new_nodes,
    xa_new_nodes_seq,
)


def nodes_of(entries: set[int]) -> int:
    """Brute force: one node per 64^(l+1)-aligned block holding an entry, on every level
    below the height the highest entry needs (a lone entry at index 0 sits in the head)."""
    if not entries:
        return 0
    h = 0
    while max(entries) >= 64 ** h:
        h += 1
    return sum(len({i >> (6 * (lv + 1)) for i in entries}) for lv in range(h))


def insert(xa: XaShape, entries: set[int], a: int, b: int, tag: int = 0) -> int:
    k = xa_insert(xa, max(entries, default=-1), a, b, tag)
    entries.update(range(a, b))
    return k


class TestShape:
    def test_a_lone_entry_at_index_0_needs_no_node(self):
        """xa_head holds the only entry when it is at index 0."""
        assert xa_height(0) == 0 and nodes_of({0}) == 0
        assert xa_new_nodes(XaShape(), -1, 0, 1) == 0

    def test_one_node_per_64_entries_and_one_above_per_4096(self):
        """64 entries from 0 fit one node; the 65th needs a second leaf and a node above."""
        assert xa_new_nodes(XaShape(), -1, 0, 64) == 1
        assert xa_new_nodes(XaShape(), -1, 0, 65) == 3
        assert xa_new_nodes(XaShape(), -1, 0, 4097) == 65 + 2 + 1

    def test_an_entry_far_out_builds_the_whole_path_down(self):
        """An empty file's first entry at index 5000 needs a leaf, a middle node and a root."""
        assert xa_new_nodes(XaShape(), -1, 5000, 5001) == 3

    def test_growing_the_tree_makes_the_node_over_the_old_entries(self):
        """{0} then 1: one leaf, made by the second entry (`xas_expand`)."""
        xa, entries = XaShape(), set()
        assert insert(xa, entries, 0, 1) == 0
        assert insert(xa, entries, 1, 2) == 1

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.booleans(), st.integers(0, 20000), st.integers(1, 700)),
                    max_size=12))
    def test_inserts_and_erases_match_the_brute_force_count(self, steps):
        """Any sequence of range inserts and erases keeps the tree's nodes equal to the count
        from the entries alone, and each reports the nodes it made or freed."""
        xa, entries = XaShape(), set()
        for add, a, n in steps:
            before = nodes_of(entries)
            if add:
                k = insert(xa, entries, a, a + n, tag=1)
                assert k == nodes_of(entries) - before
            else:
                max_before = max(entries, default=-1)
                entries -= set(range(a, a + n))
                left = frozenset(entries)
                freed = xa_erase(xa, a, a + n, max_before, max(left, default=-1),
                                 lambda lo, hi, left=left: sum(1 for i in left if lo <= i < hi))
                assert sum(freed.values()) == before - nodes_of(entries)
            assert xa.nodes(max(entries, default=-1)) == nodes_of(entries)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.integers(0, 300000), max_size=80, unique=True),
           st.lists(st.integers(0, 300000), max_size=40, unique=True))
    def test_a_sequence_adds_what_each_entry_adds_in_turn(self, before, seq):
        """The vectorised count for an explicit order equals inserting one entry at a time."""
        xa, entries = XaShape(), set()
        for i in before:
            insert(xa, entries, i, i + 1)
        seq = [i for i in seq if i not in entries]
        got = xa_new_nodes_seq(xa, max(entries, default=-1), np.array(seq, dtype=np.int64))
        want = []
        for i in seq:
            b = nodes_of(entries)
            entries.add(i)
            want.append(nodes_of(entries) - b)
        assert got.tolist() == want

    def test_inserting_a_sequence_records_its_nodes(self):
        """After xa_insert_indices the tree has exactly the nodes of the entries."""
        xa, entries = XaShape(), set(range(10))
        xa_insert(xa, -1, 0, 10, 0)
        idx = np.array([70000, 5, 300, 64], dtype=np.int64)
        xa_insert_indices(xa, 9, idx, 1)
        entries.update(idx.tolist())
        assert xa.nodes(70000) == nodes_of(entries)


class TestObjStock:
    def test_seven_nodes_fit_in_the_page_the_first_one_charges(self):
        """576-byte objects: the first charges a page, whose rest covers six more."""
        c = MemCgroup("/a")
        assert obj_stock_pages(c, 576, 4096) == 1
        obj_stock_take(c, 576, 1, 4096)
        assert c.obj_stock == 3520
        assert obj_stock_pages(c, 6 * 576, 4096) == 0
        assert obj_stock_pages(c, 7 * 576, 4096) == 1

    def test_freed_bytes_give_back_whole_pages_beyond_one(self):
        """refill_obj_stock keeps up to a page of bytes and uncharges the whole pages above."""
        c = MemCgroup("/a")
        c.obj_stock = 3520
        assert obj_stock_refill(c, 576, 4096) == 0 and c.obj_stock == 4096
        assert obj_stock_refill(c, 576, 4096) == 1 and c.obj_stock == 576

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 4096), st.integers(0, 200))
    @example(3520, 65)
    def test_freeing_many_objects_at_once_is_freeing_them_one_by_one(self, stock, n):
        """The kernel frees xarray nodes one at a time; a bulk free of n of them must leave
        the same stock and uncharge the same pages (the stock may end at exactly one page)."""
        one, many = MemCgroup("/a"), MemCgroup("/b")
        one.obj_stock = many.obj_stock = stock
        pages = sum(obj_stock_refill(one, 576, 4096) for _ in range(n))
        assert obj_stock_refill(many, n * 576, 4096) == pages and many.obj_stock == one.obj_stock

    def test_a_free_that_fills_the_stock_to_a_page_keeps_it(self):
        """3520 + 65 x 576 = 40960: one by one the last node lands on 4096, which stays, so
        9 pages go back, not 10."""
        c = MemCgroup("/a")
        c.obj_stock = 3520
        assert obj_stock_refill(c, 65 * 576, 4096) == 9 and c.obj_stock == 4096
