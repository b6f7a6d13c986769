"""Fault-around: a read fault on a file mapping maps the cached, uptodate pages of its 16-page
window (`do_fault_around` -> `filemap_map_pages`) without touching them.

Every run here is made on both engines, which must agree on outcomes and counters.
"""

from __future__ import annotations

from simulator.simulation import Run


def runs(scenario, fill, touch, ops=None):
    """A memfd of 1,024 pages filled by `fill` (ops on fd buf), mapped shared by task a, which
    touches it as `touch` says (or runs `ops` after the mmap); both engines, which must agree
    on the counters and on every fault. Returns the machine, task a's mm and its faults."""
    ops = ["memfd_create: {fd: buf}", "ftruncate: {fd: buf, size: 4MiB}", *fill,
           "mmap: {fd: buf, map: m, prot: [read, write], flags: [shared]}",
           *(ops or [f"touch: {{map: m, {touch}}}"]), "sleep: 5s"]
    text = "\n".join(["name: t", "duration: 1s", "machine: {nodes: [{memory: 256MiB}]}",
                      "tasks:", "  - name: a", "    ops:", *(f"      - {o}" for o in ops)]) + "\n"
    out = []
    for ref in (False, True):
        r = Run(scenario(text), reference=ref)
        res = r.run()
        faults = sum(e[5] for e in res.events if e[1] == "fault_slice" and e[2] == "a")
        out.append((r.m, res, faults))
    (m, res, faults), (_, ref, ref_faults) = out
    assert res.counters == ref.counters
    assert faults == ref_faults
    return m, m.tasks[0].mm, faults


def run(scenario, fill, touch, ops=None):
    """`runs`, without the faults."""
    m, mm, _ = runs(scenario, fill, touch, ops)
    return m, mm


SPARSE_READ = "access: read, pattern: stride, stride: 64KiB"  # 64 touches, one per 16 pages


def test_a_sparse_read_of_a_written_file_maps_every_cached_page(scenario):
    """64 touches map the whole file but for the unaligned ends' part of a window (the
    windows are aligned in the address space, clamped to the VMA)."""
    _, mm = run(scenario, ["write: {fd: buf, length: 4MiB}"], SPARSE_READ)
    assert mm.rss["shmem"] == around(mm, range(0, 1024, 16)) >= 1024 - 15


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


def windows(mm, a, b):
    """The 16-page windows (blocks of the virtual address) VMA pages `[a, b)` of map m meet."""
    start = mm.vmas["m"].start
    return (start + b - 1) // 16 - (start + a) // 16 + 1


def window_start(mm, idx):
    """The VMA page at which the window of VMA page `idx` of map m starts (may be < 0)."""
    start = mm.vmas["m"].start
    return (start + idx) // 16 * 16 - start


def around(mm, touched):
    """How many pages of map m the windows of the VMA pages `touched` hold."""
    return len({p for i in touched for p in range(window_start(mm, i), window_start(mm, i) + 16)
                if 0 <= p < mm.vmas["m"].npages})


def test_a_sequential_read_of_a_written_file_faults_once_per_window(scenario):
    """Each window's first fault maps the rest of it, which then needs no fault."""
    _, mm, faults = runs(scenario, ["write: {fd: buf, length: 4MiB}"], "access: read")
    assert mm.rss["shmem"] == 1024
    assert faults == windows(mm, 0, 1024)


def test_a_read_of_holes_faults_on_every_page(scenario):
    """A hole is cached only once its own fault instantiates it: an earlier fault of the same
    walk had nothing to map there."""
    _, mm, faults = runs(scenario, [], "access: read")
    assert (mm.rss["shmem"], faults) == (1024, 1024)


def test_a_walk_maps_the_rest_of_its_first_and_last_windows(scenario):
    """A read of pages 100-109 faults once per window and maps each window whole."""
    _, mm, faults = runs(scenario, ["write: {fd: buf, length: 4MiB}"],
                         "access: read, range: [400KiB, 440KiB]")
    n = windows(mm, 100, 110)
    assert (mm.rss["shmem"], faults) == (16 * n, n)
    assert mm.vmas["m"].mapped.has(window_start(mm, 100))


def test_a_hole_before_the_cached_pages_of_its_window_maps_them(scenario):
    """Of a window with its first 8 pages holes and the rest written, the fault on the first
    hole maps the written ones: the other holes fault each, the written pages do not."""
    _, mm0, _ = runs(scenario, [], "access: read, range: [0, 4KiB]")
    w = window_start(mm0, 64) + 16  # a window's first page, the same in every run
    off = (w + 8) * 4
    _, mm, faults = runs(scenario, [f"write: {{fd: buf, offset: {off}KiB, length: 32KiB}}"],
                         f"access: read, range: [{w * 4}KiB, {(w + 16) * 4}KiB]")
    assert (mm.rss["shmem"], faults) == (16, 8)


def test_a_write_fault_maps_only_its_page(scenario):
    _, mm, faults = runs(scenario, ["write: {fd: buf, length: 4MiB}"],
                         "access: write, range: [0, 64KiB]")
    assert (mm.rss["shmem"], faults) == (16, 16)


def test_a_second_fallocate_makes_fallocated_pages_uptodate(scenario):
    """SGP_FALLOC on a folio an earlier fallocate left !uptodate clears it
    (`shmem_get_folio_gfp`): fault-around maps it from then on."""
    _, mm = run(scenario, ["fallocate: {fd: buf, length: 4MiB}",
                           "fallocate: {fd: buf, length: 4MiB}"], SPARSE_READ)
    assert mm.rss["shmem"] == around(mm, range(0, 1024, 16))


def test_a_sysv_segment_does_no_fault_around(scenario):
    """`shm_vm_ops` has no `map_pages`: a sparse read of a written segment maps its touches."""
    text = """
        name: t
        duration: 1s
        machine: {nodes: [{memory: 256MiB}]}
        tasks:
          - name: a
            ops:
              - shmget: {fd: seg, size: 4MiB}
              - mmap: {fd: seg, map: w, prot: [read, write], flags: [shared]}
              - touch: {map: w, access: write}
              - mmap: {fd: seg, map: m, prot: [read], flags: [shared]}
              - touch: {map: m, access: read, pattern: stride, stride: 64KiB}
              - sleep: 5s
    """
    rss = []
    for ref in (False, True):
        r = Run(scenario(text), reference=ref)
        r.run()
        rss.append(r.m.tasks[0].mm.rss["shmem"])
    assert rss == [1024 + 64] * 2
