"""The system-call layer over the kernel functions moved out of ops.py (fs/open.c, fs/namei.c,
fs/file.c, mm/filemap.c, mm/truncate.c)."""

from __future__ import annotations

from simulator.mm.namei import do_filp_open, lookup_mnt
from simulator.simulation import Run, simulate

ONE = """
name: t
machine: {nodes: [{memory: 256MiB}]}
mounts: [{path: /dev/shm, size: 16MiB}, {path: /dev/shm/big, size: 64MiB}]
tasks:
  - name: a
    ops:
"""


HOLDER = """
  - name: holder
    ops: [{sleep: 2min}, {close: {fd: f}}]
"""


def run_ops(scenario, *ops: str, holder: bool = False):
    """Run task a's ops; a holder task keeps fd f (and its pages) past a's exit."""
    text = ONE + "".join(f"      - {o}\n" for o in ops) + (HOLDER if holder else "")
    return simulate(scenario(text))


def test_punch_hole_without_keep_size_is_eopnotsupp(scenario):
    """vfs_fallocate: FALLOC_FL_PUNCH_HOLE must come with FALLOC_FL_KEEP_SIZE."""
    r = run_ops(scenario, "memfd_create: {fd: f}", "ftruncate: {fd: f, size: 64KiB}",
                "fallocate: {fd: f, length: 64KiB, flags: [punch_hole]}")
    assert (r.tasks["a"].outcome, r.tasks["a"].errno) == ("error", "EOPNOTSUPP")


def test_a_grow_sealed_write_is_short_then_eperm(scenario):
    """F_SEAL_GROW: a write from inside i_size writes up to i_size, then fails EPERM."""
    r = run_ops(scenario, "memfd_create: {fd: f, flags: [allow_sealing]}",
                "ftruncate: {fd: f, size: 16KiB}", "add_seals: {fd: f, seals: [grow]}",
                "write: {fd: f, offset: 8KiB, length: 32KiB}", holder=True)
    assert (r.tasks["a"].outcome, r.tasks["a"].errno) == ("error", "EPERM")
    assert r.counters["files"]["f"]["size"] == 16 * 1024
    assert r.counters["files"]["f"]["pages"] == 2  # pages 2 and 3: [8KiB, 16KiB)


def test_a_grow_sealed_write_from_i_size_writes_nothing(scenario):
    """The same write starting at i_size is refused before any byte."""
    r = run_ops(scenario, "memfd_create: {fd: f, flags: [allow_sealing]}",
                "ftruncate: {fd: f, size: 16KiB}", "add_seals: {fd: f, seals: [grow]}",
                "write: {fd: f, offset: 16KiB, length: 4KiB}", holder=True)
    assert r.tasks["a"].errno == "EPERM" and r.counters["files"]["f"]["pages"] == 0


def test_open_finds_the_longest_mount_and_the_same_file_again(scenario):
    """do_filp_open: a path is on the longest mount it is below; a second open finds the file."""
    run = Run(scenario(ONE + "      - open: {fd: f, path: /dev/shm/big/x}\n"))
    m = run.m
    assert lookup_mnt(m, "/dev/shm/big/x") == "/dev/shm/big"
    assert lookup_mnt(m, "/dev/shm/bigger") == "/dev/shm"
    dcache: dict = {}
    first = do_filp_open(m, dcache, "/dev/shm/big/x")
    assert do_filp_open(m, dcache, "/dev/shm/big/x") is first and first.linked
    assert first.sb is m.mounts["/dev/shm/big"]


def test_a_read_only_fd_cannot_write_or_truncate(scenario):
    """fd_install records FMODE_WRITE: write(2) on an O_RDONLY fd is EBADF, ftruncate EINVAL."""
    r = run_ops(scenario, "open: {fd: f, path: /dev/shm/x, mode: rdonly}",
                "write: {fd: f, length: 4KiB}")
    assert r.tasks["a"].errno == "EBADF"
    r = run_ops(scenario, "open: {fd: f, path: /dev/shm/x, mode: rdonly}",
                "ftruncate: {fd: f, size: 4KiB}")
    assert r.tasks["a"].errno == "EINVAL"
