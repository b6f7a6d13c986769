"""Reclaim before the OOM killer: what memcg reclaim frees, what it swaps, and what it leaves.

Each test runs a small scenario on both engines (they must agree) and reads the counters a
kernel developer would look at: memory.events, memory.stat's pgscan/pgsteal, swap use and the
memory+swap peak. Every run ends with the invariants (`debug.check_invariants`).
"""

from simulator.mm.lru import (
    LRU_INACTIVE_ANON,
    LruState,
    Lruvec,
    isolate_lru_folios,
    lru_add_range,
    lru_del,
)
from simulator.mm.memcontrol import MemCgroup
from simulator.mm.mm_types import VMA
from simulator.mm.vmscan_lru import inactive_is_low
from simulator.simulation import simulate

READER = ["mmap: {fd: buf, map: m, prot: [read], flags: [shared]}",
          "touch: {map: m, access: read}"]


def text(tasks, cgroups, swap="256MiB", size="64MiB", sysctl="{}"):
    lines = ["name: t", "duration: 30s",
             f"machine: {{nodes: [{{memory: 1GiB}}], swap: {swap}}}", f"sysctl: {sysctl}",
             f"cgroups: {cgroups}", "tasks:",
             "  - name: sender", "    cgroup: /", "    ops:",
             "      - memfd_create: {fd: buf, flags: [allow_sealing]}",
             f"      - ftruncate: {{fd: buf, size: {size}}}",
             "      - add_seals: {fd: buf, seals: [write, shrink, grow]}",
             "      - sleep: 20s"]
    for name, cg, ops in tasks:
        lines += [f"  - name: {name}", f"    cgroup: {cg}", "    start: 1s", "    ops:"]
        lines += [f"      - {o}" for o in ops]
    return "\n".join(lines) + "\n"


def run(scenario, tasks, cgroups, **kw):
    """Both engines, which must agree on outcomes and every counter."""
    r = simulate(scenario(text(tasks, cgroups, **kw)), reference=False)
    r2 = simulate(scenario(text(tasks, cgroups, **kw)), reference=True)
    assert {n: (o.outcome, o.page) for n, o in r.tasks.items()} == \
        {n: (o.outcome, o.page) for n, o in r2.tasks.items()}
    assert r.counters == r2.counters
    return r


class TestCleanShmemHoles:
    def test_with_swap_read_fault_holes_are_dropped_not_swapped(self, scenario):
        """A read-faulted hole is a clean folio: reclaim frees it (the file has a hole again)
        and the reader of a file four times its memcg survives; nothing is written to swap."""
        r = run(scenario, [("reader", "/app", READER)], "{/app: {memory.max: 16MiB}}")
        app = r.counters["memcg"]["/app"]
        assert r.tasks["reader"].outcome == "ok"
        assert app["pgsteal"] >= 16384 - 4096 and app["peak_swap"] == 0
        assert r.counters["swap"]["pswpout"] == 0
        assert app["max_usage_pages"] == 4096

    def test_without_swap_nothing_is_reclaimable(self, scenario):
        """No swap device: get_scan_count scans the file lists only, so shmem is never
        reclaimed and the reader is OOM-killed at the limit."""
        r = run(scenario, [("reader", "/app", READER)], "{/app: {memory.max: 16MiB}}",
                swap="0")
        assert r.tasks["reader"].outcome == "oom_killed"
        assert r.counters["memcg"]["/app"]["pgsteal"] == 0

    def test_swappiness_zero_protects_shmem_in_memcg_reclaim(self, scenario):
        """v1 memory.swappiness 0: memcg reclaim scans file pages only."""
        r = run(scenario, [("reader", "/app", READER)],
                "{/app: {memory.max: 16MiB, memory.swappiness: 0}}")
        assert r.tasks["reader"].outcome == "oom_killed"
        assert r.counters["memcg"]["/app"]["pgscan"] == 0

    def test_memsw_at_the_limit_forbids_swapping(self, scenario):
        """v1: memory+swap equal to memory.max refuses first, and reclaim without
        MEMCG_RECLAIM_MAY_SWAP leaves the anon lists (and their clean shmem) alone."""
        r = run(scenario, [("reader", "/app", READER)],
                "{/app: {memory.max: 16MiB, memory.memsw.limit_in_bytes: 16MiB}}")
        assert r.tasks["reader"].outcome == "oom_killed"


class TestReferences:
    def test_a_mapped_page_survives_its_first_scan(self, scenario):
        """folio_check_references: a page whose PTE was accessed is kept for another trip round
        the inactive list (rotated, PG_referenced set) and reclaimed at the next."""
        r = run(scenario, [("reader", "/app", READER)], "{/app: {memory.max: 16MiB}}")
        app = r.counters["memcg"]["/app"]
        assert app["pgrotated"] >= 4096 - 64
        assert app["pgscan"] >= app["pgsteal"] + app["pgrotated"] - 64

    def test_written_then_mapped_pages_are_activated_not_swapped(self, scenario):
        """write(2) sets PG_referenced (SGP_WRITE) and the reader's fault sets the accessed
        bit: at the first scan both are found and the folio is activated, so reclaim drops
        the clean holes behind it instead of swapping the written data."""
        ops = ["memfd_create: {fd: w, flags: [allow_sealing]}",
               "ftruncate: {fd: w, size: 64MiB}", "write: {fd: w, length: 8MiB}",
               "mmap: {fd: w, map: m, prot: [read], flags: [shared]}",
               "touch: {map: m, access: read}"]
        r = run(scenario, [("rw", "/app", ops)], "{/app: {memory.max: 16MiB}}")
        app = r.counters["memcg"]["/app"]
        assert r.tasks["rw"].outcome == "ok"
        assert app["pgactivate"] >= 2048
        assert app["swap_peak_pages"] < 2048


class TestSwapOut:
    def test_anonymous_memory_goes_to_swap_within_memsw(self, scenario):
        """Anonymous pages are swapped out (a slot and a swap charge each) until memory+swap
        reaches its limit; then the task is OOM-killed with memsw at the limit."""
        r = run(scenario, [("anon", "/app", ["alloc_anon: {size: 40MiB}"])],
                "{/app: {memory.max: 8MiB, memory.memsw.limit_in_bytes: 24MiB}}")
        app = r.counters["memcg"]["/app"]
        assert r.tasks["anon"].outcome == "oom_killed"
        assert app["memsw_peak_pages"] == 6144
        assert r.counters["swap"]["pswpout"] > 0

    def test_anonymous_memory_that_fits_in_memsw_survives(self, scenario):
        r = run(scenario, [("anon", "/app", ["alloc_anon: {size: 16MiB}"])],
                "{/app: {memory.max: 8MiB, memory.memsw.limit_in_bytes: 24MiB}}")
        app = r.counters["memcg"]["/app"]
        assert r.tasks["anon"].outcome == "ok"
        assert app["max_usage_pages"] == 2048 and app["swap_peak_pages"] >= 2048

    def test_written_shmem_is_swapped_and_read_back(self, scenario):
        """Dirty shmem goes to swap (shmem_writeout), and read(2) swaps it back in."""
        ops = ["memfd_create: {fd: w, flags: [allow_sealing]}",
               "ftruncate: {fd: w, size: 16MiB}", "write: {fd: w, length: 16MiB}",
               "read: {fd: w}"]
        r = run(scenario, [("rw", "/app", ops)], "{/app: {memory.max: 8MiB}}")
        assert r.tasks["rw"].outcome == "ok"
        assert r.counters["swap"]["pswpout"] >= 2048 and r.counters["swap"]["pswpin"] >= 2048

    def test_swap_max_zero_keeps_anon_in_memory(self, scenario):
        """memory.swap.max 0: the memcg cannot charge swap (can_reclaim_anon_pages), so its
        anonymous memory is unreclaimable."""
        r = run(scenario, [("anon", "/app", ["alloc_anon: {size: 16MiB}"])],
                "{/app: {memory.max: 8MiB, memory.swap.max: 0}}")
        assert r.tasks["anon"].outcome == "oom_killed"
        assert r.counters["swap"]["pswpout"] == 0


class TestUnevictable:
    def test_mlocked_pages_are_never_reclaimed(self, scenario):
        """Pages of a VM_LOCKED mapping are moved to the unevictable list, not swapped; the
        locked task's memcg then OOMs as it would without swap."""
        ops = ["alloc_anon: {size: 6MiB, map: locked}", "mlock: {map: locked}",
               "alloc_anon: {size: 8MiB}"]
        r = run(scenario, [("t", "/app", ops)], "{/app: {memory.max: 8MiB}}")
        app = r.counters["memcg"]["/app"]
        assert r.tasks["t"].outcome == "ok"
        assert app["swap_peak_pages"] <= 8 * 256 + 64  # only the unlocked 8 MiB could go


class TestLruLists:
    def test_a_page_freed_is_gone_from_its_list_and_a_readded_one_is_new(self):
        """The lists are runs; a freed page leaves its run (sizes exact), and a page added
        again is in its new run only, at the head."""
        st = LruState()
        vec = Lruvec(MemCgroup("/x"), 0)
        vma = VMA("v", 0, 100, None)
        lru_add_range(st, vec, LRU_INACTIVE_ANON, vma, 0, 10, young=False)
        lru_add_range(st, vec, LRU_INACTIVE_ANON, vma, 10, 20, young=False)
        lru_del(st, vma, 3, 5)
        assert vec.nr[LRU_INACTIVE_ANON] == 18
        lru_add_range(st, vec, LRU_INACTIVE_ANON, vma, 3, 5, young=False)
        taken = isolate_lru_folios(st, vec, LRU_INACTIVE_ANON, 20)
        pages = [p for _, s, e in taken for p in range(s, e)]
        assert pages == [0, 1, 2, *range(5, 20), 3, 4]
        assert vec.nr[LRU_INACTIVE_ANON] == 0

    def test_pages_that_continue_the_head_run_join_it(self):
        """An addition that continues the head run (same object, same flags, from its end)
        joins it: the order is the same, the list stays one run; other flags start a new one."""
        st = LruState()
        vec = Lruvec(MemCgroup("/x"), 0)
        vma = VMA("v", 0, 100, None)
        for a in range(0, 40, 4):
            lru_add_range(st, vec, LRU_INACTIVE_ANON, vma, a, a + 4, young=True, referenced=True)
        assert len(vec.lists[LRU_INACTIVE_ANON]) == 1 and vec.nr[LRU_INACTIVE_ANON] == 40
        lru_add_range(st, vec, LRU_INACTIVE_ANON, vma, 40, 44, young=True)  # not referenced
        lru_add_range(st, vec, LRU_INACTIVE_ANON, vma, 50, 54, young=True)  # not contiguous
        assert len(vec.lists[LRU_INACTIVE_ANON]) == 3
        taken = isolate_lru_folios(st, vec, LRU_INACTIVE_ANON, 100)
        assert [(s, e, r.referenced) for r, s, e in taken] == [(0, 40, True), (40, 44, False),
                                                               (50, 54, False)]

    def test_inactive_is_low_uses_the_kernels_ratio(self):
        vec = Lruvec(MemCgroup("/x"), 0)
        vec.nr[0], vec.nr[1] = 100, 101
        assert inactive_is_low(vec, 0)
        vec.nr[0], vec.nr[1] = 1 << 18, 2 << 18  # 3 GiB: ratio int_sqrt(30) = 5
        assert not inactive_is_low(vec, 0)


class TestMemoryReclaim:
    def test_memory_reclaim_swaps_out_what_it_is_asked(self, scenario):
        """A write to memory.reclaim reclaims the size asked (anonymous pages to swap)."""
        ops = ["alloc_anon: {size: 16MiB}", "memory_reclaim: {cgroup: /app, size: 8MiB}"]
        r = run(scenario, [("t", "/app", ops)], "{/app: {}}")
        app = r.counters["memcg"]["/app"]
        assert r.tasks["t"].outcome == "ok"
        assert app["pgsteal"] >= 2048 and app["swap_peak_pages"] >= 2048

    def test_memory_reclaim_without_anything_reclaimable_is_eagain(self, scenario):
        """Nothing reclaimable (no swap): every batch frees nothing, and after
        MAX_RECLAIM_RETRIES the write fails with EAGAIN."""
        ops = ["alloc_anon: {size: 16MiB}", "memory_reclaim: {cgroup: /app, size: 8MiB}"]
        r = run(scenario, [("t", "/app", ops)], "{/app: {}}", swap="0")
        assert (r.tasks["t"].outcome, r.tasks["t"].errno) == ("error", "EAGAIN")

    def test_memory_reclaim_swappiness_zero_reclaims_no_anon(self, scenario):
        ops = ["alloc_anon: {size: 16MiB}",
               "memory_reclaim: {cgroup: /app, size: 8MiB, swappiness: 0}"]
        r = run(scenario, [("t", "/app", ops)], "{/app: {}}")
        assert r.tasks["t"].errno == "EAGAIN"
        assert r.counters["memcg"]["/app"]["swap_peak_pages"] == 0


class TestProtection:
    def test_effective_protection_is_shared_when_siblings_claim_too_much(self):
        """effective_protection: C (75 MiB of 50 used) and D (25 of 50) under a parent with
        50 MiB get 50 x 50/75 and 25 x 50/75 MiB; within the parent's, their own."""
        from simulator.mm.memcg_protection import effective_protection
        mib = 256
        assert effective_protection(50 * mib, 75 * mib, 50 * mib, 75 * mib) == 50 * mib * 50 // 75
        assert effective_protection(50 * mib, 25 * mib, 50 * mib, 75 * mib) == 25 * mib * 50 // 75
        assert effective_protection(50 * mib, 25 * mib, 100 * mib, 75 * mib) == 25 * mib

    def test_the_memcg_over_its_own_limit_is_not_protected(self):
        from simulator.mm.memcg_protection import mem_cgroup_below_min, mem_cgroup_calculate_protection
        a = MemCgroup("/a", min=1 << 20)
        a.usage = 100
        mem_cgroup_calculate_protection(a, a)
        assert not mem_cgroup_below_min(a, a)


class TestWhereReclaimRuns:
    """shrink_zones and mem_cgroup_iter: which nodes and which memcgs a reclaim visits."""

    BIND = """
name: bind-reclaim
duration: 60s
machine: {nodes: [{memory: 256MiB}, {memory: 256MiB}]}
mounts: [{path: /data, type: disk, files: {big: 128MiB}}]
tasks:
  - name: cache
    mempolicy: {mode: bind, nodes: [0]}
    ops:
      - open: {fd: f, path: /data/big}
      - read: {fd: f}
      - sleep: 30s
  - name: hog
    mempolicy: {mode: bind, nodes: [1]}
    start: 1s
    ops:
      - alloc_anon: {size: 300MiB}
"""

    def test_direct_reclaim_stays_on_the_allocations_nodes(self, scenario):
        """A task bound to node 1 that runs node 1 out reclaims only there: the page cache on
        node 0, which its allocation could not use, survives its OOM kill (mempolicy)."""
        for reference in (False, True):
            r = simulate(scenario(self.BIND), reference=reference)
            assert r.tasks["hog"].outcome == "oom_killed"
            assert r.oom_kills[0]["oom_constraint"] == "CONSTRAINT_MEMORY_POLICY"
            assert r.counters["nodes"][0]["file"] == 32768  # all 128 MiB still cached

    @staticmethod
    def tree():
        p = MemCgroup(path="/p")
        kids = [MemCgroup(path=f"/p/{n}", parent=p) for n in "abc"]
        p.children.extend(kids)
        return p, kids

    def test_a_partial_walk_resumes_after_where_the_last_one_stopped(self):
        """Direct and memcg reclaim share the walk's position per root and node: a walk
        broken off at /p/a leaves the next to start at /p/b and end at the end of the subtree,
        which puts the next one back at the start."""
        from simulator.mm.vmscan_lru import mem_cgroup_iter_walk

        p, (a, b, c) = self.tree()
        walk = mem_cgroup_iter_walk(p, 0, partial=True)
        assert [next(walk), next(walk)] == [p, a]
        walk.close()  # mem_cgroup_iter_break at /p/a
        assert list(mem_cgroup_iter_walk(p, 0, partial=True)) == [b, c]
        assert list(mem_cgroup_iter_walk(p, 0, partial=True)) == [p, a, b, c]
        assert list(mem_cgroup_iter_walk(p, 1, partial=True)) == [p, a, b, c]  # per node
        p.reclaim_iter[0] = c  # stopped at the last: the next walk sees at least one memcg
        assert list(mem_cgroup_iter_walk(p, 0, partial=True)) == [p, a, b, c]
        p.reclaim_iter[0] = b
        assert list(mem_cgroup_iter_walk(p, 0, partial=False)) == [p, a, b, c]  # kswapd

    def test_each_priority_is_a_new_walk_from_the_shared_position(self, scenario):
        """A walk that starts past the only memcg with pages ends at the end of the subtree
        and frees nothing; the next priority's walk starts over and finds them, and leaves
        the position there. A pass that frees nothing at all is tried again with full walks
        (do_try_to_free_pages: "Avoid false OOMs") before it returns 0."""
        from simulator.mm.vmscan_lru import ScanControl, do_try_to_free_pages
        from simulator.simulation import Run

        text = ("name: t\nduration: 5s\nmachine: {nodes: [{memory: 1GiB}]}\n"
                "mounts: [{path: /data, type: disk, files: {f: 1MiB}}]\n"
                "cgroups: {/p: {}, /p/a: {}, /p/b: {}}\n"
                "tasks:\n  - name: a\n    cgroup: /p/a\n    ops:\n"
                "      - open: {fd: f, path: /data/f}\n      - read: {fd: f}\n")
        run = Run(scenario(text))
        run.run()
        m = run.m
        p, a, b = m.memcgs["/p"], m.memcgs["/p/a"], m.memcgs["/p/b"]
        p.reclaim_iter[0] = a  # the last walk stopped at /p/a: this one starts at /p/b
        sc = ScanControl(32, p, zonelist=(0,))
        assert do_try_to_free_pages(m, sc) >= 32 and not sc.memcg_full_walk
        assert p.reclaim_iter[0] is a and sc.priority < 12
        empty = ScanControl(32, b, zonelist=(0,))
        assert do_try_to_free_pages(m, empty) == 0 and empty.memcg_full_walk
