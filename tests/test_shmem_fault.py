"""Narrative tests: what a hole costs on each path, told through runs and their event logs."""

import pytest

from simulator.simulation import simulate

BASE = """
name: t
duration: 10s
machine: {{nodes: [{{memory: 1GiB}}]}}
sysctl: {{overcommit_memory: {mode}, overcommit_ratio: {ratio}}}
mounts: [{{path: /mnt, size: {mount}}}]
cgroups:
  /app: {{memory.max: {limit}}}
tasks:
  - name: sender
    ops:
      - memfd_create: {{fd: buf, flags: [allow_sealing]}}
      - ftruncate: {{fd: buf, size: {size}}}
      - add_seals: {{fd: buf, seals: [write, shrink, grow]}}
      - sleep: 5s
  - name: reader
    cgroup: /app
    capabilities: [ipc_lock]
    start: 1ms
    ops:
{ops}
"""


def run(scenario, ops, size="8MiB", limit="64MiB", mode=0, ratio=50, mount="16MiB", **kw):
    text = BASE.format(ops="\n".join("      - " + o for o in ops), size=size, limit=limit,
                       mode=mode, ratio=ratio, mount=mount)
    return simulate(scenario(text), **kw)


MAP = "mmap: {fd: buf, map: m, prot: [read], flags: [shared]}"


class TestShmemFileReadIter:
    def test_read_of_holes_allocates_nothing(self, scenario):
        """read(2) copies ZERO_PAGE: no charge, no commit, no page in the file."""
        r = run(scenario, ["read: {fd: buf}"])
        app = r.counters["memcg"]["/app"]
        assert r.tasks["reader"].outcome == "ok"
        assert app["peak_shmem"] == 0 and app["events"]["max"] == 0
        reads = [e for e in r.events if e[1] == "shmem_file_read_iter"]
        assert reads[0][5] == 2048 and reads[0][6] == 2048  # pages copied, of which holes


class TestShmemFault:
    def test_read_fault_instantiates_and_charges_the_reader(self, scenario):
        """A read fault on a hole of a sealed file instantiates a page charged to the reader."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}"])
        app = r.counters["memcg"]["/app"]
        assert app["peak_shmem"] == 2048 and app["peak_file_mapped"] == 2048

    def test_page_tables_are_charged_per_2mib_region(self, scenario):
        """8 MiB of touched pages need 4 or 5 PTE pages (alignment), charged as kernel memory."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}", "sleep: 1s"])
        pt = r.counters["memcg"]["/app"]["peak_pagetables"]
        footprint_pt = 12
        assert 4 <= pt - footprint_pt <= 6

    def test_private_write_costs_two_pages_per_hole(self, scenario):
        """MAP_PRIVATE write: the anonymous copy and the page-cache page (do_cow_fault)."""
        r = run(scenario, ["mmap: {fd: buf, map: p, prot: [read, write], flags: [private]}",
                           "touch: {map: p, access: write}"])
        app = r.counters["memcg"]["/app"]
        assert app["peak_shmem"] == 2048 and app["peak_anon"] == 2048 + 28

    def test_kill_page_is_the_limit_less_footprint_page_tables_and_xarray_nodes(self, scenario):
        """The reader dies at the first page whose folio and xarray nodes would take usage past
        memory.max: pages 0..p-1 cost p folios, their page tables, and one 576-byte node per
        64 pages (and per 4,096 above that), charged by the page."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}"], size="64MiB", limit="16MiB")
        o = r.tasks["reader"]
        kill = r.oom_kills[0]
        assert o.outcome == "oom_killed" and kill["victim"] == "reader"
        footprint = 28 + 4 + 12
        pts = kill["pgtables_pages"] - 12

        def slab(p: int) -> int:  # slab pages for the nodes over entries 0..p-1
            nodes = 0 if p <= 1 else -(-p // 64) + (-(-p // 4096) if p > 64 else 0)
            return -(-nodes * 576 // 4096)

        p = o.page
        assert footprint + pts + p + slab(p) <= 4096 < footprint + pts + (p + 1) + slab(p + 1)

    def test_kill_page_under_3_15_has_no_kernel_memory_charge(self, scenario):
        """3.15 charged no kernel memory (page tables, the kernel stack, radix tree nodes):
        the limit less the footprint's anonymous pages is the page."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}"], size="64MiB", limit="16MiB",
                kernel="3.15")
        o, kill = r.tasks["reader"], r.oom_kills[0]
        assert o.page == 4096 - 28
        assert kill["pgtables_pages"] > 12  # allocated all the same
        assert r.counters["memcg"]["/app"]["peak_pagetables"] == 0

    def test_what_if_zero_page_costs_only_page_tables(self, scenario):
        """With zero_page_sealed_holes, a read fault on a sealed hole maps ZERO_PAGE."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}"], size="64MiB", limit="16MiB",
                what_if={"zero_page_sealed_holes": True})
        assert r.tasks["reader"].outcome == "ok"
        assert r.counters["memcg"]["/app"]["peak_shmem"] == 0

    def test_zero_page_is_replaced_by_a_later_instantiation(self, scenario):
        """A fallocate after zero-page faults instantiates the pages; the next read maps them."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}", "fallocate: {fd: buf, length: 8MiB}",
                           "touch: {map: m, access: read}"], what_if={"zero_page_sealed_holes": True})
        app = r.counters["memcg"]["/app"]
        assert r.tasks["reader"].outcome == "ok"
        assert app["peak_shmem"] == 2048 and app["peak_file_mapped"] == 2048

    def test_overcommit_never_refusal_is_sigbus(self, scenario):
        """Mode 2 refuses the page's commit with -ENOSPC: vmf_error makes it SIGBUS, no kill."""
        r = run(scenario, [MAP, "touch: {map: m, access: read}"], size="512MiB", limit="max",
                mode=2, ratio=5)
        assert r.tasks["reader"].outcome == "sigbus"
        assert r.oom_kills == []

    def test_fault_past_eof_is_sigbus(self, scenario):
        """A map longer than the file: the first page past i_size gets SIGBUS."""
        r = run(scenario, ["mmap: {fd: buf, map: m, prot: [read], flags: [shared], length: 16MiB}",
                           "touch: {map: m, access: read}"])
        assert (r.tasks["reader"].outcome, r.tasks["reader"].page) == ("sigbus", 2048)


class TestGup:
    def test_mlock_kill_happens_inside_mlock(self, scenario):
        """6.18: the memcg OOM killer runs in the GUP charge: the reader dies in mlock."""
        r = run(scenario, [MAP, "mlock: {map: m}", "touch: {map: m, access: read}"],
                size="64MiB", limit="16MiB")
        assert (r.tasks["reader"].outcome, r.tasks["reader"].op_name) == ("oom_killed", "mlock")

    def test_mlock_fails_early_on_3_15(self, scenario):
        """3.15: no memcg OOM outside user faults: mlock returns EAGAIN."""
        r = run(scenario, [MAP, "mlock: {map: m}"], size="64MiB", limit="16MiB", kernel="3.15")
        o = r.tasks["reader"]
        assert (o.outcome, o.errno, o.op_name) == ("error", "EAGAIN", "mlock")

    def test_populate_read_sigbus_class_is_efault(self, scenario):
        """MADV_POPULATE_READ reports VM_FAULT_SIGBUS as EFAULT, no signal."""
        r = run(scenario, ["open: {fd: f, path: /mnt/x}", "ftruncate: {fd: f, size: 32MiB}",
                           "mmap: {fd: f, map: t, prot: [read], flags: [shared]}",
                           "madvise: {map: t, advice: populate_read}"])
        o = r.tasks["reader"]
        assert (o.outcome, o.errno) == ("error", "EFAULT")

    def test_mlock_sigbus_class_is_enomem(self, scenario):
        """mlock reports EFAULT (VM_FAULT_SIGBUS) as ENOMEM (__mlock_posix_error_return)."""
        r = run(scenario, ["open: {fd: f, path: /mnt/x}", "ftruncate: {fd: f, size: 32MiB}",
                           "mmap: {fd: f, map: t, prot: [read], flags: [shared]}",
                           "mlock: {map: t}"])
        assert (r.tasks["reader"].outcome, r.tasks["reader"].errno) == ("error", "ENOMEM")

    def test_map_populate_ignores_errors(self, scenario):
        """MAP_POPULATE on a full tmpfs: mmap succeeds; the holes fault (SIGBUS) later."""
        r = run(scenario, ["open: {fd: f, path: /mnt/x}", "ftruncate: {fd: f, size: 32MiB}",
                           "mmap: {fd: f, map: t, prot: [read], flags: [shared, populate]}",
                           "touch: {map: t, access: read}"])
        o = r.tasks["reader"]
        assert (o.outcome, o.op_name, o.page) == ("sigbus", "touch", 4096)


class TestFallocate:
    def test_interrupted_fallocate_leaves_no_pages(self, scenario):
        """The caller is OOM-killed mid-call; the pages this call added are removed again."""
        r = run(scenario, ["fallocate: {fd: buf, length: 64MiB}"], size="64MiB", limit="16MiB")
        assert r.tasks["reader"].outcome == "oom_killed"
        undo = [e for e in r.events if e[1] == "shmem_fallocate_undo"]
        assert len(undo) == 1 and undo[0][5] > 4000
        assert r.counters["memcg"]["/app"]["shmem"] == 0

    def test_fallocate_larger_than_the_mount_fails_at_once(self, scenario):
        """len > max_blocks: ENOSPC before any page is allocated."""
        r = run(scenario, ["open: {fd: f, path: /mnt/x}", "fallocate: {fd: f, length: 32MiB}"])
        assert r.tasks["reader"].errno == "ENOSPC"
        assert r.counters["memcg"]["/app"]["peak_shmem"] == 0


@pytest.mark.parametrize("kernel", ["6.18", "3.15"])
def test_same_seed_same_event_log(scenario, kernel):
    """Same scenario and seed: an identical event log."""
    ops = [MAP, "touch: {map: m, access: read, pattern: random}"]
    a = run(scenario, ops, size="64MiB", limit="16MiB", kernel=kernel)
    b = run(scenario, ops, size="64MiB", limit="16MiB", kernel=kernel)
    assert a.events == b.events and a.tasks == b.tasks


XA = """
name: xa
duration: 10s
machine: {nodes: [{memory: 1GiB}]}
cgroups:
  /writer: {memory.max: 256MiB}
  /reader: {memory.max: 256MiB}
tasks:
  - name: writer
    cgroup: /writer
    ops:
      - memfd_create: {fd: buf}
      - ftruncate: {fd: buf, size: 32MiB}
      - write: {fd: buf, length: 16MiB}
      - sleep: 2s
      - ftruncate: {fd: buf, size: 0}
      - sleep: 5s
  - name: reader
    cgroup: /reader
    start: 1s
    ops:
      - mmap: {fd: buf, map: m, prot: [read], flags: [shared]}
      - touch: {map: m, access: read, range: [0, 16MiB]}
      - sleep: 4s
"""


class TestXarrayNodes:
    def test_nodes_are_charged_to_the_task_that_adds_the_pages(self, scenario):
        """The writer's 4,096 pages need 64 leaves and a node above: 65 x 576 bytes, ten
        pages of its memcg. The reader faults on pages already there and is charged none."""
        r = simulate(scenario(XA))
        memcg = r.counters["memcg"]
        assert memcg["/writer"]["peak_slab"] == 10
        assert memcg["/reader"]["peak_slab"] == 0

    def test_truncation_gives_back_all_but_the_stock(self, scenario):
        """Freeing the nodes refills the stock, which gives back the pages beyond one."""
        r = simulate(scenario(XA))
        assert r.counters["memcg"]["/writer"]["slab"] <= 1
