"""What this machine is: memory, swap, page size, kernel, vm sysctls, the memory controller.

Read once, before anything runs; the checks of which scenarios can run here (admit.py) take a
`Host`, so that they can be tested with any machine.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
from dataclasses import dataclass, field
from pathlib import Path

from .cgroup import CgroupUnavailable, Controller, find_memory_controller

SYSCTLS = ("overcommit_memory", "overcommit_ratio", "overcommit_kbytes", "admin_reserve_kbytes",
           "user_reserve_kbytes", "min_free_kbytes", "watermark_scale_factor", "panic_on_oom",
           "oom_kill_allocating_task", "swappiness")


@dataclass(frozen=True)
class Host:
    """This machine as the validation sees it.

    Attributes:
        mem_total: MemTotal in bytes.
        mem_available: MemAvailable in bytes (what a limit must stay below).
        swap_total: SwapTotal in bytes.
        controller: the writable memory controller, or None (then `unavailable` says why).
    """

    hostname: str
    release: str
    page_size: int
    mem_total: int
    mem_available: int
    swap_total: int
    sysctl: dict[str, int] = field(default_factory=dict)
    controller: Controller | None = None
    unavailable: str | None = None
    shmem_thp: str = "never"
    capabilities: int = (1 << 41) - 1
    memlock_max: int = -1  # the hard RLIMIT_MEMLOCK in bytes; -1 is unlimited

    def capable(self, bit: int) -> bool:
        """Whether this process holds a capability (a task can only keep what we have)."""
        return bool(self.capabilities >> bit & 1)


def meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def read_sysctls() -> dict[str, int]:
    """The vm sysctls a scenario can set, as this machine has them."""
    out = {}
    for name in SYSCTLS:
        try:
            out[name] = int(Path("/proc/sys/vm", name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


def shmem_thp() -> str:
    """The selected `transparent_hugepage/shmem_enabled` mode (memfds use it)."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read_text()
    except OSError:
        return "never"
    return next((w[1:-1] for w in text.split() if w.startswith("[")), "never")


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int:
    """CapEff of this process."""
    for line in status.read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def hard_memlock() -> int:
    """The hard RLIMIT_MEMLOCK of this process in bytes (-1: unlimited)."""
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    return -1 if hard == resource.RLIM_INFINITY else hard


def probe_host() -> Host:
    """This machine, now."""
    mi = meminfo()
    try:
        ctl, why = find_memory_controller(), None
    except CgroupUnavailable as e:
        ctl, why = None, str(e)
    return Host(
        hostname=socket.gethostname(), release=platform.release(),
        page_size=os.sysconf("SC_PAGE_SIZE"), mem_total=mi["MemTotal"],
        mem_available=mi.get("MemAvailable", mi["MemFree"]), swap_total=mi.get("SwapTotal", 0),
        sysctl=read_sysctls(), controller=ctl, unavailable=why, shmem_thp=shmem_thp(),
        capabilities=effective_capabilities(),
        memlock_max=hard_memlock(),
    )
