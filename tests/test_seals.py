"""memfd_add_seals and the seal checks (mm/memfd.c, mm/shmem.c)."""

import pytest

from simulator.mm.memfd import (
    check_fallocate,
    check_truncate,
    check_write,
    memfd_add_seals,
    memfd_check_seals_mmap,
)
from simulator.mm.shmem_inode import ShmemInode, ShmemSb
from simulator.simulation import simulate


def memfd(sealable=True, size=4096 * 16):
    inode = ShmemInode(ino=1, name="memfd:x", sb=ShmemSb("<shm>"), size=size)
    if sealable:
        inode.seals.discard("seal")
    return inode


class TestMemfdAddSeals:
    def test_a_file_created_without_allow_sealing_refuses(self):
        """Every shmem inode starts with F_SEAL_SEAL: EPERM."""
        assert memfd_add_seals(memfd(sealable=False), {"write"}) == "EPERM"

    def test_needs_a_writable_fd(self):
        """F_ADD_SEALS on a read-only fd: EPERM."""
        assert memfd_add_seals(memfd(), {"grow"}, fd_writable=False) == "EPERM"

    def test_seal_seal_stops_further_seals(self):
        """After F_SEAL_SEAL nothing more can be added."""
        f = memfd()
        assert memfd_add_seals(f, {"seal"}) is None
        assert memfd_add_seals(f, {"grow"}) == "EPERM"

    def test_write_seal_is_ebusy_while_a_shared_map_may_write(self):
        """mapping_deny_writable: a shared mapping with VM_MAYWRITE makes F_SEAL_WRITE EBUSY."""
        f = memfd()
        f.i_mmap_writable = 1
        assert memfd_add_seals(f, {"write"}) == "EBUSY"
        assert memfd_add_seals(f, {"future_write"}) is None

    def test_exec_seal_implies_the_write_seals(self):
        """F_SEAL_EXEC on an executable memfd adds SHRINK, GROW, WRITE and FUTURE_WRITE."""
        f = memfd()
        assert memfd_add_seals(f, {"exec"}) is None
        assert {"shrink", "grow", "write", "future_write", "exec"} <= f.seals

    def test_seals_only_grow(self):
        """Seals are only ever added."""
        f = memfd()
        memfd_add_seals(f, {"grow"})
        memfd_add_seals(f, {"shrink"})
        assert {"grow", "shrink"} <= f.seals


class TestSealChecks:
    @pytest.mark.parametrize("seal", ["write", "future_write"])
    def test_write_seals(self, seal):
        """write(2), punching and shared writable mmap are refused; private writable is not."""
        f = memfd()
        f.seals.add(seal)
        assert check_write(f, 10) == "EPERM"
        assert check_fallocate(f, 10, punch=True) == "EPERM"
        assert memfd_check_seals_mmap(f, shared=True, prot_write=True) == "EPERM"
        assert memfd_check_seals_mmap(f, shared=False, prot_write=True) is None

    def test_shrink_and_grow(self):
        """SHRINK refuses shrinking, GROW refuses growing and allocating past i_size."""
        f = memfd()
        f.seals |= {"shrink", "grow"}
        assert check_truncate(f, f.size - 1) == "EPERM"
        assert check_truncate(f, f.size + 1) == "EPERM"
        assert check_truncate(f, f.size) is None
        assert check_fallocate(f, f.size, punch=False) is None
        assert check_fallocate(f, f.size + 1, punch=False) == "EPERM"

    def test_shrink_does_not_stop_punching(self):
        """PUNCH_HOLE is blocked by the write seals, not by F_SEAL_SHRINK."""
        f = memfd()
        f.seals.add("shrink")
        assert check_fallocate(f, 10, punch=True) is None


def test_writable_map_then_write_seal_in_a_run(scenario):
    """A shared writable mapping taken before sealing makes F_SEAL_WRITE fail with EBUSY; after
    munmap it succeeds."""
    r = simulate(scenario("""
        name: ebusy
        tasks:
          - name: a
            ops:
              - memfd_create: {fd: f, flags: [allow_sealing]}
              - ftruncate: {fd: f, size: 1MiB}
              - mmap: {fd: f, map: w, prot: [read, write], flags: [shared]}
              - add_seals: {fd: f, seals: [write]}
          - name: b
            start: {after: c}
            ops:
              - add_seals: {fd: f, seals: [write]}
          - name: c
            start: 1ms
            ops:
              - add_seals: {fd: f, seals: [grow]}
        expect: {}
    """))
    assert (r.tasks["a"].outcome, r.tasks["a"].errno) == ("error", "EBUSY")
    assert r.tasks["b"].outcome == "ok"


def test_tmpfs_files_cannot_be_sealed(scenario):
    """A file created on a tmpfs mount keeps F_SEAL_SEAL: F_ADD_SEALS is EPERM."""
    r = simulate(scenario("""
        name: tmpfs-seal
        mounts: [{path: /mnt}]
        tasks:
          - name: a
            ops:
              - open: {fd: f, path: /mnt/x}
              - add_seals: {fd: f, seals: [write]}
    """))
    assert r.tasks["a"].errno == "EPERM"


def test_sysv_shm_is_accounted_whole_at_creation(scenario):
    """shmget without SHM_NORESERVE charges its whole size to Committed_AS (ENOMEM in mode 2
    when it does not fit); its faults are never refused by overcommit."""
    text = """
        name: sysv
        machine: {{nodes: [{{memory: 1GiB}}]}}
        sysctl: {{overcommit_memory: 2, overcommit_ratio: {ratio}}}
        tasks:
          - name: a
            ops:
              - shmget: {{fd: s, size: 256MiB}}
              - mmap: {{fd: s, map: m, prot: [read], flags: [shared]}}
              - touch: {{map: m, access: read}}
    """
    small = simulate(scenario(text.format(ratio=10)))
    assert (small.tasks["a"].errno, small.tasks["a"].op_name) == ("ENOMEM", "shmget")
    big = simulate(scenario(text.format(ratio=50)))
    assert big.tasks["a"].outcome == "ok"
