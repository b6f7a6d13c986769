"""The real kernel's MADV_POPULATE_READ rate over 1 GiB of memfd holes, in a memory cgroup of
our own (simulator/validate/cgroup.py): created with its limit written before the process
enters, the process moved in before it allocates, a timeout on everything, and the cgroup
removed again whatever happens."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from simulator.validate.cgroup import CgroupUnavailable, MemoryCgroup

SOURCE = Path(__file__).resolve().parent / "populate.c"
SIZE = 1 << 30
PAGE = 4096
TIMEOUT = 60.0


@dataclass(frozen=True)
class KernelRate:
    """Pages per second (None when it could not be measured) and how it was measured."""

    rate: float | None
    note: str


def compile_populate(workdir: Path) -> Path:
    """Build populate.c with the system's C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc) found")
    out = workdir / "populate"
    subprocess.run([cc, "-O2", "-o", str(out), str(SOURCE)], check=True, timeout=TIMEOUT,
                   capture_output=True)
    return out


def one_run(binary: Path, cg: MemoryCgroup) -> float:
    """One MADV_POPULATE_READ of SIZE bytes inside `cg`: seconds it took."""
    proc = subprocess.Popen([str(binary), str(SIZE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        cg.add_pid(proc.pid)  # before it allocates: it is blocked reading stdin
        out, err = proc.communicate(b"g", timeout=TIMEOUT)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"populate exited {proc.returncode}: {err.decode().strip()}")
    ret, errno, seconds = out.split()
    if int(ret) != 0:
        raise RuntimeError(f"MADV_POPULATE_READ failed, errno {errno}")
    return float(seconds)


def peak_bytes(cg: MemoryCgroup) -> int:
    """The cgroup's peak charge (v2 memory.peak, v1 memory.max_usage_in_bytes): it shows the
    populated pages were charged inside it."""
    name = "memory.peak" if cg.ctl.version == 2 else "memory.max_usage_in_bytes"
    try:
        return int((cg.path / name).read_text())
    except (OSError, ValueError):
        return 0


def populate_read_rate(reps: int = 5) -> KernelRate:
    """The kernel's MADV_POPULATE_READ rate (median of `reps`), or why it was not measured."""
    workdir = Path(tempfile.mkdtemp(prefix="oomsim-bench-"))
    try:
        binary = compile_populate(workdir)
        with MemoryCgroup(limit_bytes=SIZE + SIZE // 2) as cg:
            times = [one_run(binary, cg) for _ in range(reps)]
            peak = peak_bytes(cg)
        seconds = statistics.median(times)
        return KernelRate(SIZE // PAGE / seconds,
                          f"median of {reps}: {seconds * 1e3:.1f} ms per GiB; cgroup "
                          f"v{cg.ctl.version}, limit 1.5 GiB, peak charge {peak / 2**20:.0f} MiB")
    except (CgroupUnavailable, OSError, RuntimeError, subprocess.SubprocessError) as e:
        return KernelRate(None, str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
