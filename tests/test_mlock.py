"""mlock(2) and munlock(2) of a range (mm/mlock.c `do_mlock`, `mlock_fixup`, `munlock_folio`).

A range's VM_LOCKED covers only that range (the kernel splits the VMA); locked_vm counts the
locked pages, so windows that fit RLIMIT_MEMLOCK can be locked one after another; munlock
makes the pages evictable again, those reclaim had set aside as unevictable included. Each
scenario runs on both engines, which must agree.
"""

from __future__ import annotations

from simulator.scenario import parse_scenario
from simulator.simulation import simulate

MiB = 256  # pages


def run(ops: list[str], memcg: str = "8MiB", memlock: str = "8MiB", swap: str = "256MiB"):
    """One task in a memcg, on both engines (which must agree)."""
    text = "\n".join([
        "name: t", "duration: 30s", f"machine: {{nodes: [{{memory: 1GiB}}], swap: {swap}}}",
        f"cgroups: {{/app: {{memory.max: {memcg}}}}}", "tasks:",
        "  - name: t", "    cgroup: /app", f"    rlimits: {{memlock: {memlock}}}", "    ops:",
        *[f"      - {o}" for o in ops]]) + "\n"
    r = simulate(parse_scenario(text))
    r2 = simulate(parse_scenario(text), reference=True)
    assert {n: (o.outcome, o.errno, o.op, o.page) for n, o in r.tasks.items()} == \
        {n: (o.outcome, o.errno, o.op, o.page) for n, o in r2.tasks.items()}
    assert r.counters == r2.counters
    return r


class TestDoMlock:
    def test_locked_vm_counts_only_the_range(self):
        """Two 8 MiB windows of a 16 MiB map under an 8 MiB RLIMIT_MEMLOCK: the second is
        ENOMEM while the first is locked, and fits once it is unlocked."""
        ops = ["alloc_anon: {size: 16MiB, map: a, touched: false}",
               "mlock: {map: a, range: [0, 8MiB]}", "munlock: {map: a, range: [0, 8MiB]}",
               "mlock: {map: a, range: [8MiB, 16MiB]}", "munlock: {map: a, range: [8MiB, 16MiB]}",
               "mlock: {map: a, range: [0, 8MiB]}", "mlock: {map: a, range: [8MiB, 16MiB]}"]
        r = run(ops, memcg="64MiB")
        assert (r.tasks["t"].outcome, r.tasks["t"].errno, r.tasks["t"].op) == ("error", "ENOMEM", 6)

    def test_relocking_a_locked_range_is_not_counted_twice(self):
        """`count_mm_mlocked_page_nr`: mlock of pages already locked adds nothing."""
        ops = ["alloc_anon: {size: 16MiB, map: a, touched: false}",
               "mlock: {map: a, range: [0, 8MiB]}", "mlock: {map: a, range: [0, 8MiB]}",
               "mlock: {map: a, range: [4MiB, 8MiB]}"]
        assert run(ops, memcg="64MiB").tasks["t"].outcome == "ok"

    def test_only_the_locked_range_is_unevictable(self):
        """6 MiB mapped and 4 MiB more mlocked (populated locked) in an 8 MiB memcg: with the
        first 2 MiB of the 6 locked, reclaim swaps the other 4 and the task fits; with all 6
        locked nothing can go and the mlock ends in an OOM kill."""
        def ops(locked: str) -> list[str]:
            return ["alloc_anon: {size: 6MiB, map: a}", f"mlock: {{map: a, range: [0, {locked}]}}",
                    "alloc_anon: {size: 4MiB, map: b, touched: false}", "mlock: {map: b}"]
        part = run(ops("2MiB"), memlock="max")
        assert part.tasks["t"].outcome == "ok"
        assert part.counters["memcg"]["/app"]["swap_peak_pages"] <= 4 * MiB
        whole = run(ops("6MiB"), memlock="max")
        assert (whole.tasks["t"].outcome, whole.tasks["t"].op_name) == ("oom_killed", "mlock")


class TestMunlock:
    def test_munlocked_pages_are_evictable_again(self):
        """Locked pages reclaim found (moved to the unevictable list) go back to an inactive
        list at munlock (`munlock_folio`): after it, 4 MiB more mlocked fit by swapping them;
        left unevictable, they would not."""
        ops = ["alloc_anon: {size: 6MiB, map: a}", "mlock: {map: a}",
               "alloc_anon: {size: 3MiB, map: b}",  # reclaim scans the locked pages now
               "munlock: {map: a}",
               "alloc_anon: {size: 4MiB, map: c, touched: false}", "mlock: {map: c}"]
        r = run(ops, memlock="max")
        assert r.tasks["t"].outcome == "ok"
        assert r.counters["memcg"]["/app"]["swap_peak_pages"] > 3 * MiB

    def test_munlock_of_a_range_leaves_the_rest_locked(self):
        """6 MiB locked, then part of it unlocked, then 4 MiB more mlocked in an 8 MiB memcg:
        unlocking 4 MiB lets reclaim make room; unlocking 1 MiB does not (OOM kill)."""
        def ops(unlocked: str) -> list[str]:
            return ["alloc_anon: {size: 6MiB, map: a}", "mlock: {map: a}",
                    f"munlock: {{map: a, range: [0, {unlocked}]}}",
                    "alloc_anon: {size: 4MiB, map: b, touched: false}", "mlock: {map: b}"]
        assert run(ops("4MiB"), memlock="max").tasks["t"].outcome == "ok"
        assert run(ops("1MiB"), memlock="max").tasks["t"].outcome == "oom_killed"
