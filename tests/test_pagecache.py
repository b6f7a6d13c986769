"""The page cache of disk files, rule by rule: who pays for it, when reclaim drops it, what a
refault is, why dirty pages stay, and that file pages never go to swap.

Every run here is checked on both engines (outcomes and counters must agree) and ends with
`debug.check_invariants`.
"""

import textwrap

from simulator.mm.lru import LRU_ACTIVE_FILE, LRU_INACTIVE_FILE
from simulator.scenario import parse_scenario
from simulator.simulation import Run

PAGES_1M = 256


def text(tasks, memcg="4MiB", files="{a: 8MiB, b: 2MiB}", swap="0", costs="{}", duration="5s",
         nodes="[{memory: 512MiB}]"):
    """A scenario: one disk mount /data with `files`, a memcg /app, and `tasks` (name, ops)."""
    lines = ["name: t", f"duration: {duration}", "seed: 1",
             f"machine: {{nodes: {nodes}, swap: {swap}, costs: {costs}}}",
             f"mounts: [{{path: /data, type: disk, files: {files}}}]",
             f"cgroups: {{/app: {{memory.max: {memcg}}}}}", "tasks:"]
    for name, ops in tasks:
        lines += [f"  - name: {name}", "    cgroup: /app", "    ops:"]
        lines += [f"      - {o}" for o in ops]
    return "\n".join(lines) + "\n"


def run(tasks, **kw):
    """Run on the bulk engine and the per-page reference; they must agree. The bulk Run."""
    sc = parse_scenario(textwrap.dedent(text(tasks, **kw)))
    bulk, ref = Run(sc, debug_vm=True), Run(sc, reference=True, debug_vm=True)
    rb, rr = bulk.run(), ref.run()
    assert {n: (o.outcome, o.op, o.page) for n, o in rb.tasks.items()} == \
        {n: (o.outcome, o.op, o.page) for n, o in rr.tasks.items()}
    assert rb.counters == rr.counters
    bulk.result = rb
    return bulk


def app(r):
    return r.result.counters["memcg"]["/app"]


def lru(r, lst):
    vec = r.m.memcgs["/app"].lruvecs.get(0)
    return 0 if vec is None else vec.nr[lst]


def test_cache_is_charged_to_the_reader_and_outlives_it():
    """A read(2) of 4 MiB charges 4 MiB of page cache to the reader's memcg; it stays charged
    (and on the node's file pages) after the reader closed the file and exited."""
    r = run([("reader", ["open: {fd: a, path: /data/a}", "read: {fd: a, length: 4MiB}",
                         "close: {fd: a}"])], memcg="16MiB")
    c = app(r)
    assert r.result.tasks["reader"].outcome == "ok"
    assert c["file"] == c["peak_file"] == 4 * PAGES_1M
    assert c["usage_pages"] == 4 * PAGES_1M  # the footprint went with the task; the cache did not
    assert r.result.counters["nodes"][0]["file"] == 4 * PAGES_1M


def test_truncation_frees_the_cache():
    """ftruncate(2) to 0 takes the cached pages out and uncharges them."""
    r = run([("reader", ["open: {fd: a, path: /data/a, mode: rdwr}", "read: {fd: a, length: 2MiB}",
                         "ftruncate: {fd: a, size: 0}"])], memcg="16MiB")
    assert app(r)["file"] == 0 and app(r)["usage_pages"] == 0


def test_clean_cache_is_dropped_before_any_oom():
    """A memcg full of clean cache takes 3 MiB of anonymous memory without an OOM: reclaim drops
    the cache (pgsteal) first."""
    r = run([("w", ["open: {fd: a, path: /data/a}", "read: {fd: a}",
                    "alloc_anon: {size: 3MiB, touched: true}"])])
    c = app(r)
    assert r.result.tasks["w"].outcome == "ok"
    assert c["events"]["oom"] == 0 and c["events"]["oom_kill"] == 0
    assert c["pgsteal"] >= 8 * PAGES_1M - 4 * PAGES_1M
    assert c["peak_anon"] >= 3 * PAGES_1M


def test_second_read_activates_first_read_references():
    """`folio_mark_accessed`: the first read(2) leaves the folios inactive (PG_referenced), the
    second moves them to the active file list."""
    once = run([("r", ["open: {fd: a, path: /data/a}", "read: {fd: a, length: 1MiB}"])])
    assert lru(once, LRU_INACTIVE_FILE) == PAGES_1M and lru(once, LRU_ACTIVE_FILE) == 0
    twice = run([("r", ["open: {fd: a, path: /data/a}", "read: {fd: a, length: 1MiB}",
                        "read: {fd: a, length: 1MiB}"])])
    assert lru(twice, LRU_ACTIVE_FILE) == PAGES_1M and lru(twice, LRU_INACTIVE_FILE) == 0
    assert app(twice)["pgactivate"] == PAGES_1M


def test_reading_evicted_pages_again_counts_refaults():
    """Pages reclaimed leave shadow entries: reading them again is a refault, counted in the
    memcg (workingset_refault); with no active file pages and no swap the workingset is empty,
    so `workingset_test_recent` activates none of them."""
    r = run([("r", ["open: {fd: a, path: /data/a}", "read: {fd: a}", "read: {fd: a, length: 1MiB}"])])
    c = app(r)
    assert c["workingset_refault"] == PAGES_1M
    assert c["workingset_activate"] == 0
    no_evictions = run([("r", ["open: {fd: b, path: /data/b}", "read: {fd: b}", "read: {fd: b}"])])
    assert app(no_evictions)["workingset_refault"] == 0


def test_refaults_within_the_active_list_are_activated():
    """With 1 MiB of active file pages, pages evicted by a read that overflowed the memcg by
    less than that refault within the workingset (`workingset_test_recent`) and are activated;
    after an overflow larger than the active list (4 MiB read), none is."""
    prefix = ["open: {fd: b, path: /data/b}", "read: {fd: b, length: 1MiB}",
              "read: {fd: b, length: 1MiB}", "open: {fd: a, path: /data/a}"]
    near = app(run([("r", [*prefix, "read: {fd: a, length: 3MiB}", "read: {fd: a, length: 1MiB}"])]))
    assert near["workingset_refault"] > 0
    assert near["workingset_activate"] == near["workingset_refault"]
    far = app(run([("r", [*prefix, "read: {fd: a, length: 4MiB}", "read: {fd: a, length: 1MiB}"])]))
    assert far["workingset_refault"] == PAGES_1M and far["workingset_activate"] == 0


def test_refaults_of_the_working_set_are_memory_stalls():
    """Pages that had been active (deactivated: PG_workingset) and are evicted leave that bit
    in their shadow entries; read again within the workingset they are restored
    (workingset_restore) and their disk reads are memory stalls (`filemap_read_folio`:
    psi_memstall_enter), which the memcg's pressure counts; refaults of pages never active
    stall nothing. Two 5 MiB files read twice each in turn in an 8 MiB memcg thrash."""
    ops = ["open: {fd: a, path: /data/a}", "open: {fd: b, path: /data/b}"]
    for _ in range(2):
        ops += ["read: {fd: a}", "read: {fd: a}", "read: {fd: b}", "read: {fd: b}"]
    kw = dict(memcg="8MiB", files="{a: 5MiB, b: 5MiB}", costs="{disk_read: 100us}")
    c = app(run([("r", ops)], **kw))
    assert c["workingset_restore"] > PAGES_1M
    stall_us = c["workingset_restore"] * (100 + 0.144)
    assert c["pressure"]["some_total_us"] >= stall_us
    once = app(run([("r", ops[:2] + ["read: {fd: a}", "read: {fd: b}", "read: {fd: a}"])], **kw))
    assert once["workingset_refault"] > 0 and once["workingset_restore"] == 0
    assert once["pressure"]["some_total_us"] < 1000  # reclaim's scans only


def test_dirty_pages_are_not_dropped_before_writeback():
    """write(2) dirties 2 MiB of cache; until the flusher has written it (1 ms a page here),
    reclaim keeps it however much a read needs; once written it is clean and dropped."""
    early = run([("w", ["open: {fd: b, path: /data/b, mode: rdwr}",
                        "write: {fd: b, offset: 0, length: 2MiB}",
                        "open: {fd: a, path: /data/a}", "read: {fd: a}"])],
                costs="{writeback: 1ms}")
    b = early.m.files["b"]
    assert len(b.pages) == 2 * PAGES_1M  # all still cached: dirty, skipped by reclaim
    assert early.result.tasks["w"].outcome == "ok"
    late = run([("w", ["open: {fd: b, path: /data/b, mode: rdwr}",
                       "write: {fd: b, offset: 0, length: 2MiB}", "sleep: 1s",
                       "open: {fd: a, path: /data/a}", "read: {fd: a}"])],
               costs="{writeback: 1ms}")
    b = late.m.files["b"]
    assert len(b.dirty) == 0 and len(b.pages) < 2 * PAGES_1M  # written back, then dropped
    wb = [e for e in late.result.events if e[1] == "writeback"]
    assert sum(e[5] for e in wb) == 2 * PAGES_1M
    assert wb[-1][0] >= 2 * PAGES_1M * 1e-3  # at the writeback rate: 512 pages, 1 ms each


def test_file_pages_are_never_swapped():
    """With swap and a memcg that must reclaim, the disk cache is dropped, never swapped out."""
    r = run([("r", ["open: {fd: a, path: /data/a}", "read: {fd: a}", "read: {fd: a}"])],
            swap="64MiB")
    assert r.result.counters["swap"]["pswpout"] == 0
    assert app(r)["pgsteal"] > 0 and len(r.m.files["a"].swap) == 0


def test_a_fault_on_a_mapped_disk_file_reads_it_into_the_cache():
    """`filemap_fault`: touching a shared mapping of a disk file reads each page into the
    cache, charged to the faulting task and counted in its MM_FILEPAGES (not shmem)."""
    r = run([("m", ["open: {fd: b, path: /data/b}", "mmap: {fd: b, map: m, prot: [read], flags: [shared]}",
                    "touch: {map: m, access: read}", "sleep: 10s"])], duration="1s")
    c = app(r)
    assert c["file"] == c["file_mapped"] == 2 * PAGES_1M
    mm = r.m.tasks[0].mm
    assert mm.rss["file"] == 2 * PAGES_1M and mm.rss["shmem"] == 0


def test_a_sequential_scan_of_a_mapped_disk_file_is_taken_in_closed_form():
    """The bulk engine reads a sequential fault walk's missing pages in a few steps
    (`bulk_fault_disk_range`), the reference one `filemap_fault` per page, to the same end:
    each read page's disk time passes too (2 MiB: 512 x (fault + disk_read))."""
    r = run([("m", ["open: {fd: b, path: /data/b}", "mmap: {fd: b, map: m, prot: [read], flags: [shared]}",
                    "touch: {map: m, access: read}"])], memcg="16MiB")
    steps = [e for e in r.result.events if e[1] == "fault_bulk"]
    assert sum(e[5] for e in steps) == 2 * PAGES_1M and len(steps) < 10
    assert r.m.tasks[0].ioac_read_pages == 2 * PAGES_1M
    c = r.m.costs
    t = r.result.tasks["m"].time
    assert t >= 2 * PAGES_1M * (c.fault + c.disk_read)


def test_a_populating_scan_splits_across_nodes_as_page_by_page():
    """mlock of a disk file's mapping on a machine of two small nodes: the closed form's pages
    land on the nodes where one fault at a time puts them (page tables, then each folio)."""
    r = run([("m", ["open: {fd: f, path: /data/f}", "mmap: {fd: f, map: m, prot: [read], flags: [shared]}",
                    "mlock: {map: m}"])], files="{f: 1096KiB}", memcg="64MiB",
            nodes="[{memory: 768KiB}, {memory: 768KiB}]")
    assert r.result.counters["memcg"]["/app"]["file"] == 274
