"""Timing calibration: the real kernel's per-page costs, as a machine profile.

Each method runs as its own task on a fresh memfd of `size` bytes of holes (MAP_SHARED,
PROT_READ where mapped) inside a memory cgroup we create, `repeats` times, one task after the
other; the cost is the median op time divided by the pages. The measurements are ordinary
scenario ops run by the same C worker as `oomsim validate`, so the op timer (a monotonic clock
read around the syscall or the touch loop) is the only thing added.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..machine_profile import MachineProfile
from ..scenario import CostsSpec, Scenario, parse_scenario
from ..units import parse_bytes
from .admit import refusal
from .host import Host
from .program import CAPS
from .runner import KernelRunError, run_on_kernel

SYSCALL_CALLS = 200

# method -> (ops after memfd_create, index of the timed op); {S} is the size, {F}/{M} fd and map
METHODS: dict[str, tuple[list[str], int]] = {
    "fault": (["ftruncate: {fd: F, size: S}", "mmap: {fd: F, map: M, prot: [read], flags: [shared]}",
               "touch: {map: M, access: read}"], 3),
    "read": (["ftruncate: {fd: F, size: S}", "read: {fd: F}"], 2),
    "populate": (["ftruncate: {fd: F, size: S}",
                  "mmap: {fd: F, map: M, prot: [read], flags: [shared]}",
                  "madvise: {map: M, advice: populate_read}"], 3),
    "map_populate": (["ftruncate: {fd: F, size: S}",
                      "mmap: {fd: F, map: M, prot: [read], flags: [shared, populate]}"], 2),
    "fallocate": (["ftruncate: {fd: F, size: S}", "fallocate: {fd: F, length: S}"], 2),
    "mlock": (["ftruncate: {fd: F, size: S}", "mmap: {fd: F, map: M, prot: [read], flags: [shared]}",
               "mlock: {map: M}"], 3),
    "write": (["write: {fd: F, length: S}"], 1),
}


@dataclass(frozen=True)
class Calibration:
    """Measured costs in seconds per page (`syscall`: per call), and how."""

    costs: dict[str, float]
    size: int
    repeats: int


def calibration_scenario(size: int, repeats: int, host: Host) -> Scenario:
    """One task per method and repeat, each starting after the previous one, in /cal."""
    tasks, prev = [], None
    methods = dict(METHODS)
    if not host.capable(CAPS["ipc_lock"]):
        methods.pop("mlock")  # beyond RLIMIT_MEMLOCK without CAP_IPC_LOCK
    for r in range(repeats):
        for m, (ops, _) in methods.items():
            name = f"{m}{r}"
            lines = [f"      - memfd_create: {{fd: f{name}}}"] + [
                "      - " + o.replace("fd: F", f"fd: f{name}").replace("map: M", f"map: m{name}")
                .replace(": S}", f": {size}}}") for o in ops]
            caps = "[ipc_lock]" if m == "mlock" else "[]"
            start = f"{{after: {prev}}}" if prev else "0"
            tasks.append(f"  - name: {name}\n    cgroup: /cal\n    capabilities: {caps}\n"
                         f"    start: {start}\n    ops:\n" + "\n".join(lines))
            prev = name
    calls = "\n".join("      - ftruncate: {fd: fsys, size: 4096}" for _ in range(SYSCALL_CALLS))
    tasks.append(f"  - name: syscall\n    cgroup: /cal\n    start: {{after: {prev}}}\n    ops:\n"
                 f"      - memfd_create: {{fd: fsys}}\n{calls}")
    text = (f"name: calibrate\nduration: 30s\ncgroups: {{/cal: {{memory.max: {2 * size + (64 << 20)}}}}}\n"
            f"tasks:\n" + "\n".join(tasks) + "\n")
    return parse_scenario(text, "<calibration>")


def calibrate(host: Host, worker: Path, size: str = "256MiB", repeats: int = 3,
              abort: threading.Event | None = None) -> Calibration:
    """Measure every method `repeats` times over `size` bytes; the median per page."""
    nbytes = parse_bytes(size)
    pages = nbytes // host.page_size
    sc = calibration_scenario(nbytes, repeats, host)
    why = refusal(sc, host)
    if why:
        raise KernelRunError(f"calibration over {size} refused: {why}")
    res = run_on_kernel(sc, host, worker, abort)
    costs = {}
    for m, (_, op) in METHODS.items():
        times = [res.op_times.get(f"{m}{r}", {}).get(op) for r in range(repeats)]
        got = [t for t in times if t is not None]
        if m == "mlock" and not host.capable(CAPS["ipc_lock"]):
            continue
        if len(got) < repeats:
            bad = {n: o for n, o in res.tasks.items() if o.outcome != "ok"}
            raise KernelRunError(f"calibration of {m} did not complete: {bad}")
        costs[m] = statistics.median(got) / pages
    calls = sorted(res.op_times.get("syscall", {}).items())[1:]  # after memfd_create
    if calls:
        costs["syscall"] = statistics.median(t for _, t in calls)
    return Calibration(costs, nbytes, repeats)


def as_profile(cal: Calibration, host: Host) -> MachineProfile:
    """The calibration as a machine profile (costs written in ns)."""
    return MachineProfile(
        host=host.hostname, kernel=host.release, page_size=f"{host.page_size // 1024}KiB",
        measured=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        method=(f"median of {cal.repeats} runs over {cal.size >> 20} MiB of memfd holes "
                f"(MAP_SHARED, PROT_READ), one C worker in a memory cgroup of its own"),
        costs=CostsSpec(**{k: f"{v * 1e9:.0f}ns" for k, v in cal.costs.items()}),
    )


def default_profile_path(host: Host) -> Path:
    """profiles/<hostname>.yaml."""
    return Path("profiles") / f"{host.hostname}.yaml"
