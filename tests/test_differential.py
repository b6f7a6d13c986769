"""The bulk engine is exact: every scenario ends as it does when each page is faulted alone.

`simulate(sc)` takes pages in bulk (the BULK engine, simulator/engine/) and runs the one-page
path only at the page where a limit is hit; `simulate(sc, reference=True)` sends every page
through the one-page path with the same time slicing. On any scenario the two must agree on every task's
outcome (outcome, errno, op, page), on the OOM kills (victims, order, points), on every final
counter, and, beyond those, on the event log (the bulk engine's own per-step `fault_bulk`
records aside) and on each address space as its task exits (rss, page tables, which pages
are mapped, copied or zero-mapped) and each file's pages and their owners. Both runs also
pass `debug.check_invariants` after every step and op (`debug_vm`, CONFIG_DEBUG_VM), and no
task ever exits mapping a file page that is gone.

`make test` runs the `differential` profile (500 scenarios, derandomised); `make fuzz` runs
the `fuzz` profile (many more, a fresh random stream each time, failures kept in
.hypothesis/ for replay).
"""

from __future__ import annotations

import os
import textwrap
from typing import Any
from unittest import mock

from hypothesis import given, settings
from strategies import scenarios

from simulator.mm import exit as mm_exit
from simulator.outcome import RunResult
from simulator.scenario import Scenario, parse_scenario
from simulator.simulation import Run

PROFILE = "fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "differential"
ENGINE_RECORDS = {"fault_bulk"}  # one per bulk step: a page in the reference, a prefix in bulk


def runs(m: Any) -> list[tuple[int, int]]:
    """An extent map's runs, owners left out."""
    return [(s, e) for s, e, _ in m.runs(0, 1 << 62)]


def dangling_ptes(task: Any) -> int:
    """PTEs that map a file page the file no longer has (a model inconsistency)."""
    n = 0
    for vma in task.mm.vmas.values():
        if vma.file is not None:
            for s, e, _ in vma.mapped.runs(0, vma.npages):
                n += vma.file.pages.holes(vma.pgoff + s, vma.pgoff + e)
    return n


def mm_state(task: Any) -> dict[str, Any]:
    """What an address space holds: rss, page tables per node, and each VMA's PTEs."""
    mm = task.mm
    assert dangling_ptes(task) == 0, f"{task.name} maps file pages that are gone"
    return {
        "rss": dict(mm.rss), "pt_nodes": dict(+mm.pt_nodes), "anon_nodes": dict(+mm.anon_nodes),
        "pt": {s: runs(mm.pt[s]) for s in mm.pt},
        "vmas": {name: (runs(v.mapped), runs(v.cow), runs(v.zero)) for name, v in mm.vmas.items()},
    }


def file_state(m: Any) -> dict[str, Any]:
    """Every file's pages as runs tagged with the memcg and node that own them."""
    return {fd: [(s, e, m.owners[o][0].path, m.owners[o][1]) for s, e, o in i.pages.runs(0, 1 << 62)]
            for fd, i in m.files.items()}


def simulate_observed(sc: Scenario, reference: bool) -> tuple[RunResult, dict[str, Any]]:
    """Run `sc`, keeping each task's address space as it exits and the files at the end."""
    run = Run(sc, reference=reference, debug_vm=True)
    m = run.m
    seen: dict[str, Any] = {}
    exit_mm = mm_exit.exit_mm

    def observed_exit_mm(m: Any, task: Any) -> None:
        seen[task.name] = mm_state(task)
        exit_mm(m, task)

    with mock.patch.object(mm_exit, "exit_mm", observed_exit_mm):
        result = run.run()
    for t in m.tasks:
        seen.setdefault(t.name, mm_state(t))
    seen["files"] = file_state(m)
    return result, seen


def outcomes(r: RunResult) -> dict[str, tuple[Any, ...]]:
    """Each task's outcome, errno, op and page."""
    return {name: (o.outcome, o.errno, o.op, o.page) for name, o in r.tasks.items()}


def kills(r: RunResult) -> list[tuple[Any, ...]]:
    """The OOM kills in order: victim, constraint (and the kernel's, with its nodemask), memcg
    and points."""
    return [(k["victim"], k["constraint"], k["oom_constraint"], k["nodemask"], k["memcg"],
             k["points"]) for k in r.oom_kills]


def events(r: RunResult) -> list[tuple[Any, ...]]:
    """The event log without the engine's own per-step records."""
    return [e for e in r.events if e[1] not in ENGINE_RECORDS]


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two nested dicts differ, as `path: a != b` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += differences(a.get(k), b.get(k), f"{path}.{k}")
        return out
    return [] if a == b else [f"{path}: bulk {a!r} != reference {b!r}"]


def assert_same_run(sc: Scenario) -> None:
    """Bulk and reference runs of `sc` agree on outcomes, kills, counters, log and state."""
    bulk, bulk_state = simulate_observed(sc, reference=False)
    ref, ref_state = simulate_observed(sc, reference=True)
    assert bulk.panic == ref.panic
    assert outcomes(bulk) == outcomes(ref)
    assert kills(bulk) == kills(ref)
    diff = differences(bulk.counters, ref.counters) + differences(bulk_state, ref_state)
    assert not diff, "\n".join(diff)
    bulk_log, ref_log = events(bulk), events(ref)
    first = next((i for i, (x, y) in enumerate(zip(bulk_log, ref_log, strict=False))
                  if x != y), None)
    assert first is None and len(bulk_log) == len(ref_log), (
        f"event logs part at record {first}: bulk {bulk_log[first or 0:][:2]} "
        f"!= reference {ref_log[first or 0:][:2]}")


def yaml(text: str) -> Scenario:
    """A scenario from indented YAML text."""
    return parse_scenario(textwrap.dedent(text))


class TestBulkEqualsReference:
    @settings(settings.get_profile(PROFILE))
    @given(scenarios())
    def test_random_scenarios(self, sc: Scenario) -> None:
        """Any small scenario runs the same on both engines."""
        assert_same_run(sc)


class TestFoundByTheDifferentialTests:
    """Each case here is a minimal scenario on which the two engines once disagreed."""

    def test_swapin_of_another_memcgs_pages_under_memory_high(self):
        """A task under memory.high swapping in pages recorded for another memcg takes them one
        at a time on both engines (the bulk step once asserted it could take them at once)."""
        assert_same_run(yaml("""
            name: swapin-across-memcgs-under-high
            duration: 10s
            machine: {nodes: [{memory: 64MiB}], swap: 4MiB}
            cgroups: {/b: {memory.high: 1MiB}}
            tasks:
              - name: owner
                ops:
                  - memfd_create: {fd: f}
                  - fallocate: {fd: f, length: 512KiB}
                  - sleep: 5s
              - name: reader
                cgroup: /b
                start: 1ms
                ops:
                  - mmap: {fd: f, map: m, prot: [read], flags: [shared]}
                  - touch: {map: m, access: read}
                  - madvise: {map: m, advice: pageout}
                  - touch: {map: m, access: read}
            """))

    def test_reread_after_fallocate_keeps_zero_ptes(self) -> None:
        """What-if zero page: a re-read over pages instantiated under ZERO_PAGE PTEs maps the
        same pages on both engines (the range path once mapped pages still under zero PTEs)."""
        assert_same_run(yaml("""
            name: zero-ptes-over-fallocated-pages
            duration: 10s
            machine: {nodes: [{memory: 64MiB}]}
            what_if: {zero_page_sealed_holes: true}
            tasks:
              - name: a
                ops:
                  - memfd_create: {fd: f, flags: [allow_sealing]}
                  - ftruncate: {fd: f, size: 1MiB}
                  - add_seals: {fd: f, seals: [write]}
                  - mmap: {fd: f, map: m, prot: [read], flags: [shared]}
                  - touch: {map: m, access: read, range: [0, 512KiB]}
                  - fallocate: {fd: f, length: 1MiB}
                  - touch: {map: m, access: read}
            """))

    def test_concurrent_walks_share_the_slicing(self) -> None:
        """Two tasks walking in one memcg interleave by slices on both engines (the reference
        once yielded after every page, so peaks and kill times differed)."""
        assert_same_run(yaml("""
            name: racing-readers
            duration: 10s
            machine: {nodes: [{memory: 64MiB}], costs: {quantum: 20us}}
            cgroups: {/app: {memory.max: 2MiB}}
            tasks:
              - name: owner
                ops:
                  - memfd_create: {fd: f}
                  - ftruncate: {fd: f, size: 4MiB}
                  - sleep: 5s
              - name: r1
                cgroup: /app
                start: 1ms
                ops:
                  - mmap: {fd: f, map: m, prot: [read], flags: [shared]}
                  - touch: {map: m, access: read}
              - name: r2
                cgroup: /app
                start: 1ms
                ops:
                  - alloc_anon: {size: 1MiB}
                  - mmap: {fd: f, map: m, prot: [read, write], flags: [private]}
                  - touch: {map: m, access: write, pattern: random}
            """))

    def test_racing_fill_keeps_every_page_accounted(self) -> None:
        """A fill that slept in a memcg OOM while another task filled the same page drops its
        own page again (-EEXIST): no page is lost from its node (once leaked on both engines)."""
        assert_same_run(yaml("""
            name: racing-fallocates
            duration: 30s
            machine:
              nodes: [{memory: 1140KiB}, {memory: 816KiB}, {memory: 2380KiB}, {memory: 848KiB}]
            sysctl: {overcommit_memory: 2, overcommit_ratio: 50, admin_reserve_kbytes: 0,
                     user_reserve_kbytes: 128, min_free_kbytes: 512}
            mounts: [{path: /mnt/t0, size: 4096KiB}]
            cgroups: {/a: {memory.max: 320KiB}}
            tasks:
              - name: setup
                node: 3
                ops: [{open: {fd: f0, path: /mnt/t0/file0}}]
              - name: w0
                start: 1ms
                node: 3
                ops:
                  - mmap: {fd: f0, map: m, prot: [read], flags: [shared, noreserve],
                           offset: 413696, length: 24576}
                  - fallocate: {fd: f0, offset: 200704, length: 311296,
                                flags: [punch_hole, keep_size]}
                  - fallocate: {fd: f0, offset: 192512, length: 319488, flags: [keep_size]}
              - name: w1
                cgroup: /a
                start: 1ms
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 12KiB}
                node: 2
                ops:
                  - fallocate: {fd: f0, offset: 4096, length: 524288, flags: [keep_size]}
            """))

    def test_failed_fallocate_keeps_pages_another_task_mapped(self) -> None:
        """A fallocate that fails (memcg ENOMEM) undoes its pages but not those a reader has
        faulted in meanwhile (once freed under the reader's PTEs, and a re-touch then cost
        new folios on one engine and nothing on the other)."""
        assert_same_run(yaml("""
            name: fallocate-undo-under-a-reader
            kernel: '3.15'
            duration: 30s
            machine: {nodes: [{memory: 4120KiB}], costs: {quantum: 20us}}
            sysctl: {overcommit_memory: 0, admin_reserve_kbytes: 256, user_reserve_kbytes: 128}
            cgroups: {/b: {memory.max: 384KiB}}
            what_if: {zero_page_sealed_holes: true}
            tasks:
              - name: setup
                cgroup: /b
                ops:
                  - memfd_create: {fd: f0}
                  - ftruncate: {fd: f0, size: 1204224}
              - name: w0
                cgroup: /b
                start: 7ms
                footprint: {anon: 64KiB, kernel: 4KiB, page_tables: 20KiB, committed: 20KiB}
                ops: [{fallocate: {fd: f0, offset: 135168, length: 524288}}]
              - name: w1
                start: 7ms
                ops:
                  - mmap: {fd: f0, map: m, prot: [read], flags: [shared], offset: 180224,
                           length: 409600}
                  - touch: {map: m, access: read}
                  - touch: {map: m, access: read, range: [53248, 86016]}
              - name: w2
                cgroup: /b
                start: 2s
                footprint: {anon: 56KiB, kernel: 12KiB, page_tables: 32KiB, committed: 32KiB}
                ops: [{write: {fd: f0, offset: 32768, length: 782336}}]
            """))

    def test_private_copy_past_eof_needs_no_fault(self) -> None:
        """After a truncate, a private copy past the new EOF is still mapped: a walk over it
        does not fault there (the array path once stopped at EOF as if for a SIGBUS)."""
        assert_same_run(yaml("""
            name: private-copy-past-eof
            duration: 30s
            machine: {nodes: [{memory: 1536KiB}]}
            mounts: [{path: /mnt/t0, size: 0}]
            tasks:
              - name: setup
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - open: {fd: f0, path: /mnt/t0/file0}
                  - ftruncate: {fd: f0, size: 8192}
                  - sleep: 50ms
              - name: w0
                start: 1ms
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - mmap: {fd: f0, map: p, prot: [read, write], flags: [private], length: 8192}
                  - touch: {map: p, access: write, range: [4096, 8192]}
                  - ftruncate: {fd: f0, size: 4096}
                  - touch: {map: p, access: write}
            """))

    def test_swapin_racing_a_truncate_maps_no_gone_page(self) -> None:
        """Two tasks fault the same page in swap; one maps it, then truncates the file while
        the other's swap read is in flight: the other finds the entry gone and faults past
        EOF (its swap-in once inserted the folio before the read and mapped it afterwards,
        over a page the truncate had freed)."""
        assert_same_run(yaml("""
            name: swapin-against-truncate
            duration: 30s
            machine: {nodes: [{memory: 1536KiB}], swap: 64KiB}
            tasks:
              - name: setup
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - memfd_create: {fd: f0, flags: [allow_sealing]}
                  - ftruncate: {fd: f0, size: 4096}
                  - mmap: {fd: f0, map: s, prot: [read], flags: [shared]}
                  - touch: {map: s, access: read}
                  - madvise: {map: s, advice: pageout}
                  - munmap: {map: s}
                  - sleep: 50ms
              - name: w0
                start: 7ms
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - mmap: {fd: f0, map: m, prot: [read], flags: [shared, populate], length: 4096}
              - name: w1
                start: 7ms
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - mmap: {fd: f0, map: m, prot: [read], flags: [shared], length: 4096}
                  - touch: {map: m, access: read}
                  - ftruncate: {fd: f0, size: 0}
                  - touch: {map: m, access: read}
            """))

    def test_read_swapin_time_from_counts(self) -> None:
        """A read that swaps in runs of pages takes the same time on both engines (the time of
        a slice was once summed page by page in one and run by run in the other, and the
        float sums differed in the last bit)."""
        assert_same_run(yaml("""
            name: read-swapin-time
            duration: 30s
            machine: {nodes: [{memory: 1536KiB}], swap: 512KiB}
            tasks:
              - name: setup
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - memfd_create: {fd: f0, flags: [allow_sealing]}
                  - ftruncate: {fd: f0, size: 131072}
                  - mmap: {fd: f0, map: s, prot: [read], flags: [shared]}
                  - touch: {map: s, access: read, range: [0, 110592]}
                  - madvise: {map: s, advice: pageout}
                  - munmap: {map: s}
                  - sleep: 50ms
              - name: w0
                start: 1ms
                footprint: {anon: 4KiB, kernel: 4KiB, page_tables: 12KiB, committed: 4KiB}
                ops:
                  - read: {fd: f0, offset: 0, length: 131072}
            """))
