"""Narrative tests of swap: MADV_PAGEOUT, the memcg swap charge, swap-in and its traps.

A producer fills a memfd through a shared mapping and pages it out (MADV_PAGEOUT); readers and
faulting tasks then swap the pages back in, charged to the memcg recorded at swap-out. Every
run ends with `debug.check_invariants`, which includes the swap slots, the memcg swap
counters and MM_SWAPENTS.
"""

from simulator.simulation import Run, simulate

PAGES_8M = 2048


def producer(size="8MiB", extra=(), seal=True):
    """Ops of a producer that writes every page of a memfd through a map and pages it out."""
    ops = ["memfd_create: {fd: buf, flags: [allow_sealing]}",
           f"ftruncate: {{fd: buf, size: {size}}}",
           "mmap: {fd: buf, map: w, prot: [read, write], flags: [shared]}",
           "touch: {map: w, access: write}",
           "madvise: {map: w, advice: pageout}",
           "munmap: {map: w}"]
    if seal:
        ops.append("add_seals: {fd: buf, seals: [write, shrink, grow]}")
    return ops + list(extra)


def scenario_text(tasks, cgroups="{}", swap="64MiB", what_if="{}", mounts="[]"):
    lines = ["name: t", "duration: 30s",
             f"machine: {{nodes: [{{memory: 512MiB}}], swap: {swap}}}",
             "sysctl: {swappiness: 0}", f"cgroups: {cgroups}", f"what_if: {what_if}",
             f"mounts: {mounts}", "tasks:"]
    for name, cg, start, ops in tasks:
        lines += [f"  - name: {name}", f"    cgroup: {cg}", f"    start: {start}", "    ops:"]
        lines += [f"      - {o}" for o in ops]
    return "\n".join(lines) + "\n"


def run(scenario, tasks, **kw):
    """Run on both engines (they must agree); a `keeper` task holds `buf` to the end."""
    if any("fd: buf" in o for *_, ops in tasks for o in ops):
        tasks = [*tasks, ("keeper", "/", 0, ["sleep: 40s", "close: {fd: buf}"])]
    ref = kw.pop("reference", False)
    r = simulate(scenario(scenario_text(tasks, **kw)), reference=ref)
    if not ref:  # every run here agrees with the per-page reference
        r2 = simulate(scenario(scenario_text(tasks, **kw)), reference=True)
        assert {n: (o.outcome, o.errno, o.op, o.page) for n, o in r.tasks.items()} == \
            {n: (o.outcome, o.errno, o.op, o.page) for n, o in r2.tasks.items()}
        assert r.counters == r2.counters
    return r


class TestMadvisePageout:
    def test_shmem_pages_leave_memory_but_stay_accounted(self, scenario):
        """Paged-out shmem pages are uncharged and freed, recorded in swap with their memcg;
        tmpfs blocks and Committed_AS keep them (alloced = resident + swapped)."""
        r = run(scenario, [("p", "/p", 0, producer(extra=["sleep: 1s"]))],
                cgroups="{/p: {}}")
        p = r.counters["memcg"]["/p"]
        assert r.tasks["p"].outcome == "ok"
        assert p["shmem"] == 0 and p["peak_shmem"] == PAGES_8M
        assert p["swap"] == PAGES_8M and p["swap_current_pages"] == PAGES_8M
        assert r.counters["files"]["buf"]["pages"] == 0
        assert r.counters["files"]["buf"]["swapped"] == PAGES_8M
        assert r.counters["swap"]["used_pages"] == PAGES_8M
        pageout = next(e for e in r.events if e[1] == "madvise_pageout")
        assert pageout[5] == PAGES_8M

    def test_swap_max_stops_pageout(self, scenario):
        """memory.swap.max (hierarchical) refuses the rest: `max` and `fail` per folio; those
        folios stay in memory, unmapped."""
        r = run(scenario, [("p", "/a/p", 0, producer(extra=["sleep: 1s"]))],
                cgroups="{/a: {memory.swap.max: 1MiB}, /a/p: {}}")
        p, a = r.counters["memcg"]["/a/p"], r.counters["memcg"]["/a"]
        assert p["swap_current_pages"] == 256 and a["swap_current_pages"] == 256
        assert p["shmem"] == PAGES_8M - 256 and p["file_mapped"] == 0
        assert p["swap_events"] == {"max": PAGES_8M - 256, "fail": PAGES_8M - 256}
        assert a["swap_events"]["max"] == PAGES_8M - 256

    def test_full_swap_device_fails_without_max(self, scenario):
        """No free slot: `fail` events only."""
        r = run(scenario, [("p", "/p", 0, producer(extra=["sleep: 1s"]))],
                cgroups="{/p: {}}", swap="1MiB")
        p = r.counters["memcg"]["/p"]
        assert p["swap"] == 256 and p["swap_events"] == {"max": 0, "fail": PAGES_8M - 256}

    def test_mlocked_mapping_is_einval(self, scenario):
        """MADV_PAGEOUT on a VM_LOCKED mapping fails with EINVAL (`can_madv_lru_vma`)."""
        ops = producer()[:4] + ["mlock: {map: w}", "madvise: {map: w, advice: pageout}"]
        r = run(scenario, [("p", "/", 0, ops)])
        o = r.tasks["p"]
        assert (o.outcome, o.errno, o.op_name) == ("error", "EINVAL", "madvise")
        assert r.counters["swap"]["used_pages"] == 0

    def test_pages_mlocked_through_another_mapping_stay(self, scenario):
        """A folio mlocked through another mapping of the same process stays (mapped twice,
        and unevictable)."""
        ops = producer()[:4] + ["mmap: {fd: buf, map: l, prot: [read], flags: [shared]}",
                                "mlock: {map: l}", "madvise: {map: w, advice: pageout}"]
        r = run(scenario, [("p", "/", 0, ops)])
        assert r.tasks["p"].outcome == "ok"
        assert r.counters["swap"]["used_pages"] == 0

    def test_pages_another_process_maps_stay(self, scenario):
        """A folio another process maps is left alone (its mapcount is 2)."""
        other = ["mmap: {fd: buf, map: r, prot: [read], flags: [shared]}",
                 "touch: {map: r, access: read, range: [0, 4MiB]}", "sleep: 5s"]
        ops = producer()[:4] + ["sleep: 1s", "madvise: {map: w, advice: pageout}"]
        r = run(scenario, [("p", "/", 0, ops), ("q", "/", "10ms", other)])
        # q maps the half it touched, and the rest of its last fault's 16-page window
        # (fault-around maps the cached pages around a read fault)
        used = r.counters["swap"]["used_pages"]
        assert PAGES_8M // 2 - 15 <= used <= PAGES_8M // 2

    def test_noswap_mount_keeps_pages(self, scenario):
        """A tmpfs mounted `noswap` never swaps: the pages are unmapped and kept."""
        ops = ["open: {fd: f, path: /mnt/x}", "ftruncate: {fd: f, size: 1MiB}",
               "mmap: {fd: f, map: w, prot: [read, write], flags: [shared]}",
               "touch: {map: w, access: write}", "madvise: {map: w, advice: pageout}"]
        r = run(scenario, [("p", "/", 0, ops)], mounts="[{path: /mnt, noswap: true}]")
        assert r.counters["swap"]["used_pages"] == 0
        assert r.counters["memcg"]["/"]["file_mapped"] == 0

    def test_anon_pages_become_swap_entries(self, scenario):
        """Private anonymous pages go to swap as swap PTEs: MM_SWAPENTS, in oom_badness."""
        ops = ["alloc_anon: {size: 8MiB, map: a}", "madvise: {map: a, advice: pageout}",
               "alloc_anon: {size: 64MiB}"]
        r = run(scenario, [("p", "/p", 0, ops)], cgroups="{/p: {memory.max: 32MiB}}")
        kill = r.oom_kills[0]
        assert kill["victim"] == "p" and kill["swapents"] == PAGES_8M
        assert kill["points"] == kill["rss_pages"] + kill["pgtables_pages"] + PAGES_8M
        assert kill["task_line"].split()[-3] == str(PAGES_8M)  # dump_task's swapents column


class TestShmemSwapinFolio:
    def test_swapin_is_charged_to_the_recorded_memcg(self, scenario):
        """A reader in another memcg swaps the pages back into the producer's memcg."""
        r = run(scenario, [("p", "/p", 0, producer(extra=["sleep: 5s"])),
                           ("c", "/c", "1s", ["read: {fd: buf}", "sleep: 1s"])],
                cgroups="{/p: {}, /c: {}}")
        p, c = r.counters["memcg"]["/p"], r.counters["memcg"]["/c"]
        assert p["shmem"] == PAGES_8M and p["swap"] == 0 and p["swap_current_pages"] == 0
        assert c["peak_shmem"] == 0
        assert r.counters["swap"] == {"total_pages": 16384, "kind": "zram", "used_pages": 0,
                                      "free_pages": 16384, "pswpin": PAGES_8M,
                                      "pswpout": PAGES_8M}

    def test_reader_can_oom_kill_the_producer_in_its_memcg(self, scenario):
        """The swap-in charge is the recorded memcg's: a reader in an unlimited memcg makes
        the producer's memcg go over its limit, and the producer is OOM-killed."""
        r = run(scenario, [("p", "/p", 0, producer("48MiB", ["alloc_anon: {size: 24MiB}",
                                                              "sleep: 10s"])),
                           ("c", "/c", "1s", ["read: {fd: buf}"])],
                cgroups="{/p: {memory.max: 64MiB}, /c: {}}")
        assert r.tasks["p"].outcome == "oom_killed" and r.tasks["c"].outcome == "ok"
        assert r.oom_kills[0]["memcg"] == "/p"

    def test_read_of_paged_out_sealed_file_can_oom_kill_the_reader(self, scenario):
        """read(2) of a sealed memfd costs nothing for holes, but pages in swap are
        instantiated: in a shared parent memcg the reader is the largest and is killed."""
        reader = ["alloc_anon: {size: 24MiB}", "read: {fd: buf}"]
        r = run(scenario, [("p", "/app/p", 0, producer("48MiB", ["sleep: 10s"])),
                           ("c", "/app/c", "1s", reader)],
                cgroups="{/app: {memory.max: 64MiB}, /app/p: {}, /app/c: {}}")
        o = r.tasks["c"]
        assert (o.outcome, o.op_name) == ("oom_killed", "read")
        assert r.oom_kills[0]["memcg"] == "/app"

    def test_read_swapin_enomem_without_a_victim(self, scenario):
        """With no task left to kill in the recorded memcg, read(2) returns ENOMEM (after a
        short count)."""
        chunks = [f"{op}: {{map: w, {arg}range: [{i * 8}MiB, {(i + 1) * 8}MiB]}}"
                  for i in range(4)
                  for op, arg in (("touch", "access: write, "), ("madvise", "advice: pageout, "))]
        prod = ["memfd_create: {fd: buf}", "ftruncate: {fd: buf, size: 32MiB}",
                "mmap: {fd: buf, map: w, prot: [read, write], flags: [shared]}", *chunks]
        r = run(scenario, [("p", "/p", 0, prod), ("c", "/", "1s", ["read: {fd: buf}"])],
                cgroups="{/p: {memory.max: 16MiB}}")
        assert r.tasks["p"].outcome == "ok"
        o = r.tasks["c"]
        assert (o.outcome, o.errno, o.op_name) == ("error", "ENOMEM", "read")
        # /p's 16 MiB, all of it the file's pages swapped back but for the slab pages of the
        # file's xarray nodes, which stay charged to /p (the producer added the pages).
        slab = r.counters["memcg"]["/p"]["slab"]
        assert slab > 0 and o.page == 4096 - slab
        assert r.oom_kills == []

    def test_no_commit_or_tmpfs_accounting_at_swapin(self, scenario):
        """Swap-in changes neither Committed_AS nor tmpfs blocks."""
        before = run(scenario, [("p", "/", 0, producer(extra=["sleep: 1s"]))])
        after = run(scenario, [("p", "/", 0, producer(extra=["read: {fd: buf}", "sleep: 1s"]))])
        assert before.counters["committed_as_pages"] == after.counters["committed_as_pages"]
        assert after.counters["files"]["buf"]["pages"] == PAGES_8M

    def test_zero_page_what_if_does_not_apply_to_pages_in_swap(self, scenario):
        """A read fault on a page in swap of a write-sealed file swaps it in: not a hole."""
        reader = ["mmap: {fd: buf, map: m, prot: [read], flags: [shared]}",
                  "touch: {map: m, access: read}", "sleep: 1s"]
        r = run(scenario, [("p", "/p", 0, producer(extra=["sleep: 5s"])),
                           ("c", "/c", "1s", reader)],
                cgroups="{/p: {}, /c: {}}", what_if="{zero_page_sealed_holes: true}")
        assert r.counters["memcg"]["/p"]["shmem"] == PAGES_8M
        assert r.counters["memcg"]["/c"]["peak_file_mapped"] == PAGES_8M


class TestBulkSwapin:
    def test_sequential_touch_of_own_pages_swaps_in_on_both_engines(self, scenario):
        """A sequential walk of a shared mapping whose pages in swap are its own memcg's takes
        them in bulk; the per-page reference ends the same (outcomes, counters)."""
        ops = ["memfd_create: {fd: buf}", "ftruncate: {fd: buf, size: 8MiB}",
               "mmap: {fd: buf, map: w, prot: [read, write], flags: [shared]}",
               "touch: {map: w, access: write}", "madvise: {map: w, advice: pageout}",
               "alloc_anon: {size: 6MiB}", "touch: {map: w, access: read}", "sleep: 1s"]
        r = run(scenario, [("p", "/p", 0, ops)], cgroups="{/p: {memory.max: 12MiB}}")
        o = r.tasks["p"]
        assert (o.outcome, o.op_name) == ("oom_killed", "touch")  # swap-in over memory.max
        assert r.counters["swap"]["pswpin"] > 1000


    def test_faults_swap_in_another_memcgs_pages_in_bulk(self, scenario):
        """A consumer's faults on a sealed memfd its producer paged out swap the pages back
        into the producer's memcg, the page tables into its own, in a few steps (not one per
        page), up to the producer's memory.max, where the producer is OOM-killed."""
        consumer = ["mmap: {fd: buf, map: m, prot: [read], flags: [shared]}",
                    "touch: {map: m, access: read}", "sleep: 1s"]
        hog = ["alloc_anon: {size: 16MiB}", "sleep: 10s"]
        r = run(scenario, [("p", "/app/p", 0, producer("32MiB", hog)),
                           ("c", "/app/c", "1s", consumer)],
                cgroups="{/app: {memory.max: 64MiB}, /app/p: {memory.max: 40MiB}, /app/c: {}}")
        assert r.tasks["p"].outcome == "oom_killed" and r.tasks["c"].outcome == "ok"
        assert r.oom_kills[0]["memcg"] == "/app/p"
        assert r.counters["memcg"]["/app/c"]["peak_shmem"] == 0
        assert r.counters["memcg"]["/app/p"]["shmem"] == 8192
        steps = [e[5] for e in r.events if e[1] == "fault_bulk" and e[2] == "c"]
        assert r.counters["swap"]["pswpin"] == 8192
        # Every page on a bulk step but the one at /app/p's limit (its slow path kills p).
        assert sum(steps) == 8191 and len(steps) < 20


    def test_write_over_paged_out_pages_swaps_them_in_in_bulk(self, scenario):
        """write(2) over pages in swap swaps them back (SGP_WRITE), charged to the memcg
        recorded for them, in steps of runs: a handful of SimPy events for 2,048 pages, and
        the same end on the per-page reference."""
        writer = ["write: {fd: buf, length: 8MiB}", "sleep: 1s"]
        tasks = [("p", "/p", 0, producer(seal=False, extra=["sleep: 5s"])),
                 ("w", "/w", "1s", writer)]
        r = run(scenario, tasks, cgroups="{/p: {}, /w: {}}")
        assert r.tasks["w"].outcome == "ok"
        assert r.counters["swap"]["pswpin"] == PAGES_8M
        assert r.counters["memcg"]["/p"]["shmem"] == PAGES_8M
        assert r.counters["memcg"]["/w"]["peak_shmem"] == 0
        sim = Run(scenario(scenario_text(
            [*tasks, ("keeper", "/", 0, ["sleep: 40s", "close: {fd: buf}"])],
            cgroups="{/p: {}, /w: {}}")))
        steps = 0
        step = sim.env.step

        def counted() -> None:
            nonlocal steps
            steps += 1
            step()

        sim.env.step = counted  # type: ignore[method-assign]
        sim.run()
        assert steps < 100  # every op and sleep of three tasks; not one per page


class TestDoSwapPage:
    def test_touch_swaps_anonymous_pages_back(self, scenario):
        """A write to a swap PTE swaps the page in: MM_SWAPENTS back to 0."""
        ops = ["alloc_anon: {size: 8MiB, map: a}", "madvise: {map: a, advice: pageout}",
               "touch: {map: a, access: read}", "sleep: 40s"]
        r = run(scenario, [("p", "/p", 0, ops)], cgroups="{/p: {}}")
        p = r.counters["memcg"]["/p"]
        assert p["swap"] == 0 and p["anon"] >= PAGES_8M
        assert r.counters["swap"]["pswpin"] == PAGES_8M


class TestFreeSwap:
    def test_truncate_frees_swap(self, scenario):
        """Truncating a file frees its swap entries: slots, swap charge, blocks and commit."""
        r = run(scenario, [("p", "/p", 0, producer(seal=False, extra=[
            "ftruncate: {fd: buf, size: 0}", "sleep: 1s"]))], cgroups="{/p: {}}")
        p = r.counters["memcg"]["/p"]
        assert p["swap"] == 0 and p["swap_current_pages"] == 0 and p["swap_peak_pages"] == PAGES_8M
        assert r.counters["swap"]["used_pages"] == 0
        assert r.counters["files"]["buf"]["swapped"] == 0

    def test_punch_hole_frees_swap(self, scenario):
        """Punching a hole frees the swap entries in it."""
        r = run(scenario, [("p", "/", 0, producer(seal=False, extra=[
            "fallocate: {fd: buf, offset: 0, length: 4MiB, flags: [punch_hole, keep_size]}",
            "sleep: 1s"]))])
        assert r.counters["swap"]["used_pages"] == PAGES_8M // 2

    def test_exit_frees_anonymous_swap(self, scenario):
        """A task's swap PTEs are freed when it exits (`zap_pte_range`)."""
        ops = ["alloc_anon: {size: 8MiB, map: a}", "madvise: {map: a, advice: pageout}"]
        r = run(scenario, [("p", "/p", 0, ops)], cgroups="{/p: {}}")
        assert r.counters["swap"]["used_pages"] == 0
        assert r.counters["swap"]["pswpout"] == PAGES_8M


def filler(how, size="4MiB"):
    """Ops instantiating every page of a fresh memfd `buf` in one way, then mapping it
    read-only (map r, which maps them all) and paging that mapping out."""
    ops = ["memfd_create: {fd: buf}", f"ftruncate: {{fd: buf, size: {size}}}"]
    ops += {
        "read_fault": [],
        "private_read_fault": [],
        "write": [f"write: {{fd: buf, length: {size}}}"],
        "fallocate": [f"fallocate: {{fd: buf, length: {size}}}"],
        "shared_write_fault": ["mmap: {fd: buf, map: w, prot: [read, write], flags: [shared]}",
                               "touch: {map: w, access: write}", "munmap: {map: w}"],
        # a read fault first: the PTE is writable (shmem has no writenotify), so the write
        # does not fault; its dirty bit reaches the folio when reclaim unmaps it
        "write_after_read": ["mmap: {fd: buf, map: w, prot: [read, write], flags: [shared]}",
                             "touch: {map: w, access: read}", "touch: {map: w, access: write}",
                             "munmap: {map: w}"],
    }[how]
    flags = "private" if how == "private_read_fault" else "shared"
    return ops + [f"mmap: {{fd: buf, map: r, prot: [read], flags: [{flags}]}}",
                  "touch: {map: r, access: read}", "madvise: {map: r, advice: pageout}",
                  "sleep: 1s"]


class TestCleanShmemFoliosAreDropped:
    """`shrink_folio_list`: a clean shmem folio (read-faulted on a hole, never written) is freed
    by `__remove_mapping`, swap or not; a dirty one goes to swap, or stays without swap."""

    PAGES = 1024

    def test_read_faulted_holes_are_freed_without_swap(self, scenario):
        """The file has holes again: uncharged, blocks and Committed_AS given back."""
        for how in ("read_fault", "private_read_fault"):
            r = run(scenario, [("p", "/p", 0, filler(how))], cgroups="{/p: {}}", swap="0")
            p = r.counters["memcg"]["/p"]
            assert p["shmem"] == 0 and p["peak_shmem"] == self.PAGES, how
            assert r.counters["files"]["buf"]["pages"] == 0, how
            assert r.counters["files"]["buf"]["swapped"] == 0, how

    def test_read_faulted_holes_are_freed_not_swapped_with_swap(self, scenario):
        r = run(scenario, [("p", "/p", 0, filler("read_fault"))], cgroups="{/p: {}}")
        assert r.counters["memcg"]["/p"]["shmem"] == 0
        assert r.counters["swap"]["used_pages"] == 0

    def test_dirty_folios_stay_without_swap_and_go_to_swap_with_it(self, scenario):
        """write(2), fallocate (dirtied so that reclaim swaps rather than frees them), a shared
        write fault and a write through an already mapped page all dirty the folio."""
        for how in ("write", "fallocate", "shared_write_fault", "write_after_read"):
            r = run(scenario, [("p", "/p", 0, filler(how))], cgroups="{/p: {}}", swap="0")
            assert r.counters["memcg"]["/p"]["shmem"] == self.PAGES, how
            assert r.counters["memcg"]["/p"]["file_mapped"] == 0, how
            r = run(scenario, [("p", "/p", 0, filler(how))], cgroups="{/p: {}}")
            assert r.counters["memcg"]["/p"]["shmem"] == 0, how
            assert r.counters["files"]["buf"]["swapped"] == self.PAGES, how

    def test_a_folio_swapped_in_is_dirty(self, scenario):
        """Its swap copy was freed at swap-in, so a second pageout writes it out again."""
        ops = producer(size="4MiB", seal=False, extra=[
            "mmap: {fd: buf, map: r, prot: [read], flags: [shared]}",
            "touch: {map: r, access: read}", "madvise: {map: r, advice: pageout}", "sleep: 1s"])
        r = run(scenario, [("p", "/p", 0, ops)], cgroups="{/p: {}}")
        assert r.counters["files"]["buf"]["swapped"] == self.PAGES
        assert r.counters["memcg"]["/p"]["shmem"] == 0
