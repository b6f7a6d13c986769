"""Fault-around: a read fault on a file mapping maps the cached, uptodate pages of its 16-page
window (`do_fault_around` -> `filemap_map_pages`) without touching them.

Every run here is made on both engines, which must agree on outcomes and counters.
"""

from __future__ import annotations

from simulator.simulation import Run


def run(scenario, fill, touch):
    """A memfd of 1,024 pages filled by `fill` (ops on fd buf), mapped shared by task a, which
    touches it as `touch` says; returns the machine and task a's mm."""
    ops = ["memfd_create: {fd: buf}", "ftruncate: {fd: buf, size: 4MiB}", *fill,
           "mmap: {fd: buf, map: m, prot: [read, write], flags: [shared]}",
           f"touch: {{map: m, {touch}}}", "sleep: 5s"]
    text = "\n".join(["name: t", "duration: 1s", "machine: {nodes: [{memory: 256MiB}]}",
                      "tasks:", "  - name: a", "    ops:", *(f"      - {o}" for o in ops)]) + "\n"
    out = []
    for ref in (False, True):
        r = Run(scenario(text), reference=ref)
        res = r.run()
        out.append((r.m, res))
    (m, res), (_, ref) = out
    assert res.counters == ref.counters
    return m, m.tasks[0].mm


SPARSE_READ = "access: read, pattern: stride, stride: 64KiB"  # 64 touches, one per 16 pages


def test_a_sparse_read_of_a_written_file_maps_every_cached_page(scenario):
    """64 touches map the whole file but for the unaligned ends' part of a window (the
    windows are aligned in the address space, clamped to the VMA)."""
    _, mm = run(scenario, ["write: {fd: buf, length: 4MiB}"], SPARSE_READ)
    assert 1024 - 15 <= mm.rss["shmem"] <= 1024


def test_fault_around_fills_no_hole(scenario):
    """Of a file written in its first half, the touches in the second half instantiate their
    own pages only; nothing is charged for the pages around them."""
    m, mm = run(scenario, ["write: {fd: buf, length: 2MiB}"], SPARSE_READ)
    assert len(m.files["buf"].pages) == 512 + 32
    assert 512 + 32 - 15 <= mm.rss["shmem"] <= 512 + 32 + 15


def test_fallocated_pages_are_not_uptodate_and_not_mapped_around(scenario):
    """`shmem_fallocate` leaves its folios !uptodate, and `filemap_map_pages` skips them: only
    the touched pages are mapped (each fault clears and maps its own)."""
    _, mm = run(scenario, ["fallocate: {fd: buf, length: 4MiB}"], SPARSE_READ)
    assert mm.rss["shmem"] == 64


def test_a_write_over_fallocated_pages_makes_them_uptodate(scenario):
    _, mm = run(scenario, ["fallocate: {fd: buf, length: 4MiB}",
                           "write: {fd: buf, length: 4MiB}"], SPARSE_READ)
    assert mm.rss["shmem"] >= 1024 - 15


def test_write_faults_do_no_fault_around(scenario):
    """`do_shared_fault` maps the faulting page only."""
    _, mm = run(scenario, ["write: {fd: buf, length: 4MiB}"],
                "access: write, pattern: stride, stride: 64KiB")
    assert mm.rss["shmem"] == 64


def test_a_random_walk_agrees_on_both_engines(scenario):
    """Random order: a later touch may land on a page an earlier fault-around mapped."""
    _, mm = run(scenario, ["write: {fd: buf, offset: 1MiB, length: 2MiB}"],
                "access: read, pattern: random, range: [0, 3MiB]")
    assert mm.rss["shmem"] >= 512
