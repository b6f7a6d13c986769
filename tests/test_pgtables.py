"""Page tables freed before exit, and after an RCU grace period.

munmap frees the page tables only the unmapped VMA used (`free_pgtables`); MADV_DONTNEED over
whole 2 MiB regions frees their PTE tables (CONFIG_PT_RECLAIM); exit frees them all. Each time
they leave the mm and NR_PAGETABLE at once but stay charged to the memcg until an RCU grace
period has passed (`tlb_remove_table` -> `call_rcu`, `Costs.pgtable_rcu`). Every run here is
checked on both engines and ends with `debug.check_invariants`.
"""

from __future__ import annotations

from simulator.simulation import Run

TABLES = 512  # one page written per 2 MiB of a 1 GiB map: 512 PTE tables


def run(scenario, ops, kernel="6.18", others="", cg="{memory.max: 64MiB}", adj=0):
    """Task a runs `ops` in /app (on both engines, which must agree); a final `sleep: 5s`
    keeps it alive past the run's end, for its mm to be looked at."""
    text = "\n".join([
        "name: t", f'kernel: "{kernel}"', "duration: 1s",
        "machine: {nodes: [{memory: 4GiB}]}", f"cgroups: {{/app: {cg}}}", "tasks:",
        "  - name: a", "    cgroup: /app", f"    oom_score_adj: {adj}", "    ops:",
        *(f"      - {o}" for o in ops)]) + "\n" + others
    out = []
    for ref in (False, True):
        r = Run(scenario(text), reference=ref)
        res = r.run()
        out.append((r, res))
    (r, res), (_, ref) = out
    assert {n: (o.outcome, o.op, o.page) for n, o in res.tasks.items()} == \
        {n: (o.outcome, o.op, o.page) for n, o in ref.tasks.items()}
    assert res.counters == ref.counters
    return r, res


STRIDE = ["alloc_anon: {size: 1GiB, touched: false, map: big}",
          "touch: {map: big, access: write, pattern: stride, stride: 2MiB}"]


def pagetables(r):
    return r.m.memcgs["/app"].stat["pagetables"]


def usage_at(res, path, t):
    """The memcg's usage at simulated time t, from the level records."""
    vals = [v for tt, kind, key, v, *_ in res.levels if kind == "memcg_usage" and key == path
            and tt <= t]
    return vals[-1]


def test_munmap_frees_the_vmas_page_tables_after_a_grace_period(scenario):
    """Out of `pagetables` at once; still in the memcg's usage until the grace period ends."""
    r, res = run(scenario, [*STRIDE, "munmap: {map: big}", "sleep: 5s"])
    a = r.m.tasks[0]
    assert a.mm.pgtables_pages() < 16 and pagetables(r) == a.mm.pgtables_pages()
    free = next(e for e in res.events if e[1] == "pgtable_rcu_free")
    munmap_time = free[0] - r.m.costs.pgtable_rcu
    assert free[5] >= TABLES
    assert usage_at(res, "/app", munmap_time) - usage_at(res, "/app", free[0]) == free[5]


def test_a_charge_right_after_munmap_still_sees_the_tables(scenario):
    """With 2 MiB of page tables pending, 5.6 MiB more do not fit in 16 MiB holding 10 MiB;
    after the grace period they do."""
    fill = ["alloc_anon: {size: 10MiB}", *STRIDE, "munmap: {map: big}"]
    _, res = run(scenario, [*fill, "alloc_anon: {size: 5600KiB}"], cg="{memory.max: 16MiB}")
    assert res.tasks["a"].outcome == "oom_killed"
    _, res = run(scenario, [*fill, "sleep: 50ms", "alloc_anon: {size: 5600KiB}"],
                 cg="{memory.max: 16MiB}")
    assert res.tasks["a"].outcome == "ok"


def test_a_table_shared_with_another_vma_stays(scenario):
    """free_pgtables frees only what lies between the neighbours: a small map next to the big
    one keeps the PTE table (and PMD table) they share."""
    ops = ["alloc_anon: {size: 8KiB, map: small}", *STRIDE, "touch: {map: small, access: write}",
           "munmap: {map: big}", "sleep: 5s"]
    r, _ = run(scenario, ops)
    mm = r.m.tasks[0].mm
    small = mm.vmas["small"]
    assert all(mm.pt[sh].has(small.start >> sh) for sh in mm.pt)


def test_dontneed_frees_the_pte_tables_of_whole_2mib_regions(scenario):
    """PT_RECLAIM: the tables of regions the zap covers whole go (PMD tables stay); the partial
    regions at the map's ends keep theirs."""
    r, _ = run(scenario, [*STRIDE, "madvise: {map: big, advice: dontneed}", "sleep: 5s"])
    mm = r.m.tasks[0].mm
    big = mm.vmas["big"]
    inside = (big.start + big.npages) // 512 - -(-big.start // 512)
    assert mm.pt[9].count(big.start >> 9, ((big.start + big.npages - 1) >> 9) + 1) == \
        TABLES - inside
    assert r.m.memcgs["/app"].rcu_pgtables == {0: 0}


def test_dontneed_of_part_of_a_region_frees_no_table(scenario):
    """Zapping 1 MiB, less than any whole region, leaves every table."""
    r, _ = run(scenario, [*STRIDE, "madvise: {map: big, advice: dontneed, range: [0, 1MiB]}",
                          "sleep: 5s"])
    r2, _ = run(scenario, [*STRIDE, "sleep: 5s"])
    assert r.m.tasks[0].mm.pgtables_pages() == r2.m.tasks[0].mm.pgtables_pages() > TABLES


def test_3_15_frees_page_tables_at_once_and_not_on_dontneed(scenario):
    """[2014] x86 freed page tables without RCU, and MADV_DONTNEED freed none (no
    PT_RECLAIM, no MADV_* populate either: plain touches)."""
    r, res = run(scenario, [*STRIDE, "madvise: {map: big, advice: dontneed}",
                            "munmap: {map: big}", "sleep: 5s"], kernel="3.15")
    assert not any(e[1] == "pgtable_rcu_free" for e in res.events)
    assert r.m.tasks[0].mm.pgtables_pages() < 16


def test_an_oom_victims_page_tables_let_a_second_task_be_killed(scenario):
    """The victim's exit gives back its pages at once but its page tables only after the grace
    period: the grower meets its limit again before then and a second task is killed."""
    others = "\n".join([
        "  - name: bystander", "    cgroup: /app", "    oom_score_adj: 1000",
        "    ops: [{alloc_anon: {size: 1MiB}}, {sleep: 1s}]",
        "  - name: grower", "    cgroup: /app", "    start: 50ms",
        "    ops: [{alloc_anon: {size: 13500KiB}}]"]) + "\n"
    _, res = run(scenario, [*STRIDE, "sleep: 1s"], cg="{memory.max: 16MiB}", others=others,
                 adj=1000)
    assert [k["victim"] for k in res.oom_kills] == ["a", "bystander"]
    assert res.oom_kills[1]["time"] - res.oom_kills[0]["time"] < 14e-3
