"""Which scenarios the real kernel can run here, and which it must not (the safety refusal).

A scenario is *skipped* when this machine cannot reproduce it (another kernel's rules, a what-if,
several nodes, swap it does not have, shmem huge pages, a sysctl it has otherwise (we never change
a sysctl), a capability or limit this process cannot give a task, a cgroup version's file). It is
*refused* when running it could hurt the machine: every task that allocates more than
`SMALL_TASK_BYTES` must sit in a memory cgroup whose memory.max is below the free memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from ..scenario import Scenario, TaskSpec, op_args, op_name
from ..scenario_model import swap_size
from ..units import parse_bytes
from ..validify import machine_bytes
from .program import CAPS

if TYPE_CHECKING:
    from .host import Host

SMALL_TASK_BYTES = 16 << 20
MiB = 1 << 20
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


def skip_reason(sc: Scenario, host: Host) -> str | None:
    """Why this machine cannot run the scenario as written, or None."""
    if sc.kernel != "6.18":
        return f"kernel {sc.kernel} behaviour profile (this machine runs {host.release})"
    what_if = [k for k, v in sc.what_if.model_dump().items() if v]
    if what_if:
        return f"what_if {', '.join(what_if)}: behaviour no kernel has"
    if len(sc.machine.nodes) > 1:
        return f"{len(sc.machine.nodes)} NUMA nodes (only single-node scenarios run for real)"
    ps = parse_bytes(sc.machine.page_size)
    if ps != host.page_size:
        return f"page size {ps // 1024} KiB (this machine has {host.page_size // 1024} KiB)"
    swap = parse_bytes(swap_size(sc.machine.swap))
    if swap and not host.swap_total:
        return (f"swap {swap // MiB} MiB (this machine has no swap; the model's swap is a "
                f"zram-like SWP_SYNCHRONOUS_IO device)")
    if host.shmem_thp in ("always", "within_size", "force"):
        return f"shmem_enabled={host.shmem_thp}: memfds may get huge pages (the model has none)"
    ram = machine_bytes(sc)
    if ram > host.mem_total:
        return f"machine memory {ram // MiB} MiB (this machine has {host.mem_total // MiB} MiB)"
    for name in sorted(set(sc.sysctl.model_fields_set) | {"overcommit_memory"}):
        want, have = getattr(sc.sysctl, name), host.sysctl.get(name)
        if want is not None and have is not None and want != have:
            return f"vm.{name}={want} (this machine has {have}; a sysctl is never changed)"
    why = disk_skip_reason(sc)
    if why:
        return why
    for t in sc.tasks:
        for op in t.ops:
            if op_name(op) == "touch" and getattr(op_args(op), "count", None) is not None:
                # the worker touches every page of the range; a sample of it is not in its ops
                return f"task {t.name} touches a sample of pages (touch count), which the worker lacks"
    return cgroup_skip_reason(sc, host) or capability_skip_reason(sc, host)


def disk_skip_reason(sc: Scenario, tmp: str | None = None,
                     mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """A disk mount's files are written below the temporary directory: it must be on a disk
    filesystem (not tmpfs, whose "files on disk" would be shmem) with room for them."""
    disk = [mnt for mnt in sc.mounts if mnt.type == "disk"]
    if not disk:
        return None
    where = tmp or tempfile.gettempdir()
    fstype = filesystem_type(where, mountinfo)
    if fstype in MEMORY_FILESYSTEMS:
        return f"disk mount {disk[0].path}: {where} is {fstype}, not a disk filesystem"
    ram = machine_bytes(sc)
    need = sum(parse_bytes(s, ram) for mnt in disk for s in mnt.files.values())
    free = shutil.disk_usage(where).free
    if need > free // 2:
        return f"disk mount files {need // MiB} MiB ({where} has {free // MiB} MiB free)"
    return None


def filesystem_type(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The type of the filesystem `path` is on (the longest mount point above it)."""
    real = os.path.realpath(path)
    best, fstype = "", ""
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4]
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, fstype = point, right.split()[0]
    return fstype


def capability_skip_reason(sc: Scenario, host: Host) -> str | None:
    """A capability a task needs that this process does not have to give, or None."""
    for t in sc.tasks:
        for cap in t.capabilities:
            if not host.capable(CAPS[cap]):
                return f"task {t.name} needs CAP_{cap.upper()}, which this process does not have"
        memlock = -1 if t.rlimits.memlock == "max" else parse_bytes(t.rlimits.memlock)
        raise_limit = host.memlock_max >= 0 and (memlock < 0 or memlock > host.memlock_max)
        if raise_limit and not host.capable(CAPS["sys_resource"]):
            return (f"task {t.name} needs RLIMIT_MEMLOCK {t.rlimits.memlock}, above this "
                    f"process's hard limit ({host.memlock_max // 1024} KiB), and raising it needs "
                    f"CAP_SYS_RESOURCE, which this process does not have")
        if t.oom_score_adj < 0 and not host.capable(CAPS["sys_resource"]):
            return (f"task {t.name} starts at oom_score_adj {t.oom_score_adj}, which needs "
                    f"CAP_SYS_RESOURCE, which this process does not have")
    return None


def cgroup_skip_reason(sc: Scenario, host: Host) -> str | None:
    """A memcg control the machine's cgroup version does not have, or None."""
    version = host.controller.version if host.controller else None
    if version == 1 and any(op_name(o) == "memory_reclaim" for t in sc.tasks for o in t.ops):
        return "memory_reclaim writes memory.reclaim, which needs cgroup v2 (this machine has v1)"
    for path, cg in sc.cgroups.items():
        if version == 1:
            if cg.memory_oom_group:
                return f"{path}: memory.oom.group needs cgroup v2 (this machine has v1)"
            for key, val, dflt in (("memory.high", cg.memory_high, "max"),
                                   ("memory.low", cg.memory_low, 0),
                                   ("memory.min", cg.memory_min, 0),
                                   ("memory.swap.max", cg.memory_swap_max, "max")):
                if val != dflt:
                    return f"{path}: {key} needs cgroup v2 (this machine has v1)"
        if version == 2:
            v1_only: tuple[tuple[str, object, object], ...] = (
                ("memory.oom_kill_disable", cg.memory_oom_kill_disable, False),
                ("memory.memsw.limit_in_bytes", cg.memory_memsw_limit_in_bytes, "max"),
                ("memory.swappiness", cg.memory_swappiness, None))
            for key, have, unset in v1_only:
                if have != unset:
                    return f"{path}: {key} needs cgroup v1 (this machine has v2)"
        has_children = any(p.startswith(path + "/") for p in sc.cgroups)
        if version == 2 and has_children and any(t.cgroup == path for t in sc.tasks):
            return f"{path} has tasks and child cgroups, which cgroup v2 does not allow"
    return None


def fd_sizes(sc: Scenario) -> dict[str, int]:
    """The largest size each fd reaches (ftruncate, write, fallocate), over all tasks."""
    sizes: dict[str, int] = {}
    for t in sc.tasks:
        for o in t.ops:
            name, a = op_name(o), op_args(o)
            if name in ("ftruncate", "shmget"):
                end = parse_bytes(a.size)
            elif name in ("write", "fallocate"):
                end = parse_bytes(a.offset) + parse_bytes(a.length)
            else:
                continue
            sizes[a.fd] = max(sizes.get(a.fd, 0), end)
    return sizes


def task_alloc_bytes(sc: Scenario, task: TaskSpec, sizes: dict[str, int] | None = None) -> int:
    """The most memory a task's ops can instantiate: maps, fallocate, write, alloc_anon."""
    sizes = fd_sizes(sc) if sizes is None else sizes
    total = 0
    for o in task.ops:
        name, a = op_name(o), op_args(o)
        if name == "mmap":
            off = parse_bytes(a.offset)
            total += parse_bytes(a.length) if a.length is not None else max(0, sizes.get(a.fd, 0) - off)
        elif name in ("fallocate", "write") and "punch_hole" not in getattr(a, "flags", []):
            total += parse_bytes(a.length)
        elif name == "alloc_anon":
            total += parse_bytes(a.size)
    return total


def effective_limit(sc: Scenario, cgroup: str) -> int | None:
    """The lowest memory.max on the path from the root to `cgroup`, in bytes (None: no limit)."""
    ram = machine_bytes(sc)
    limits = []
    parts = [p for p in cgroup.split("/") if p]
    for i in range(1, len(parts) + 1):
        spec = sc.cgroups.get("/" + "/".join(parts[:i]))
        if spec is not None and spec.memory_max != "max":
            limits.append(parse_bytes(spec.memory_max, ram))
    return min(limits) if limits else None


def refusal(sc: Scenario, host: Host) -> str | None:
    """Why running the scenario here would be unsafe, or None."""
    sizes = fd_sizes(sc)
    for t in sc.tasks:
        need = task_alloc_bytes(sc, t, sizes)
        if need <= SMALL_TASK_BYTES:
            continue
        limit = effective_limit(sc, t.cgroup)
        if limit is None:
            return (f"task {t.name} may allocate {need // MiB} MiB but its cgroup {t.cgroup} has no "
                    f"memory.max (each task above {SMALL_TASK_BYTES // MiB} MiB needs one below "
                    f"the free memory, {host.mem_available // MiB} MiB)")
        if limit >= host.mem_available:
            return (f"task {t.name} may allocate {need // MiB} MiB and its cgroup {t.cgroup}'s "
                    f"memory.max ({limit // MiB} MiB) is not below the free memory "
                    f"({host.mem_available // MiB} MiB)")
    return None
