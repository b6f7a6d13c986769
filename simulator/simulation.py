"""Build a machine and its tasks from a validated scenario, run it, return the results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from .engine import frozen_heap, task_rng
from .mm.debug import check_invariants
from .mm.file import close_fd
from .mm.machine import Costs, Machine
from .mm.memcontrol import PAGE_COUNTER_MAX, MemCgroup, mod_memcg_state, page_counter_charge
from .mm.memory import MM, PT_SHIFTS
from .mm.oom_kill import KernelPanic
from .mm.overcommit import Overcommit
from .mm.page_alloc import Node, calculate_min_free_kbytes, setup_per_zone_wmarks, take_pages
from .mm.profiles import PROFILES, WhatIf
from .mm.shmem import ShmemInode, ShmemSb
from .mm.task import TaskStruct
from .scenario import Scenario, ScenarioError, op_args
from .tasks import Proc, TaskOutcome, run_task
from .units import parse_bytes, parse_pages, parse_seconds

MMAP_TOP = 0x7FFFF7FFF000 >> 12  # pages; the top of the mmap area before randomisation
MMAP_RND_PAGES = 1 << 28  # x86-64 mmap_rnd_bits = 28
LIB_PAGES = 512  # shared libraries and the like just below mmap_base


@dataclass
class RunResult:
    """One run of a scenario with one seed: outcomes, kills, events and final counters."""

    scenario: str
    seed: int
    kernel: str
    tasks: dict[str, TaskOutcome]
    oom_kills: list[dict[str, Any]]
    events: list[tuple[Any, ...]]
    counters: dict[str, Any]
    end_time: float
    panic: str | None = None
    what_if: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The run's entry in the JSON output."""
        return {
            "seed": self.seed,
            "kernel": self.kernel,
            "what_if": self.what_if,
            "tasks": {k: v.as_dict() for k, v in self.tasks.items()},
            "oom_kills": [
                {k: v for k, v in kill.items() if k in (
                    "victim", "constraint", "memcg", "points", "time", "task_memcg",
                    "totalpages", "rss_pages", "pgtables_pages", "swapents", "oom_score_adj",
                    "line", "task_line")}
                for kill in self.oom_kills
            ],
            "panic": self.panic,
            "end_time": self.end_time,
            "counters": self.counters,
        }


class Run:
    """One simulated run: the machine, its processes, and the scenario's fds."""

    def __init__(self, sc: Scenario, seed: int | None = None, reference: bool = False,
                 kernel: str | None = None, what_if: dict[str, Any] | None = None,
                 check_invariants: bool = True) -> None:
        self.sc = sc
        self.seed = sc.seed if seed is None else seed
        self.kernel = kernel or sc.kernel
        wi = sc.what_if.model_dump()
        wi.update(what_if or {})
        self.what_if = wi
        self.env = simpy.Environment()
        self.m = build_machine(sc, self.env, self.kernel, WhatIf(**wi))
        self.m.reference = reference
        self.check = check_invariants
        self.procs: dict[str, Proc] = {}
        self.fd_modes: dict[str, bool] = {}
        self.tmpfs: dict[str, ShmemInode] = {}
        self.fd_users = fd_users(sc)
        with frozen_heap():
            for i, spec in enumerate(sc.tasks):
                t = build_task(self.m, spec, pid=100 + i, rng=task_rng(self.seed, spec.name))
                p = Proc(sim=self, m=self.m, task=t, spec=spec)
                p.ops_done = self.env.event()
                self.procs[spec.name] = p

    # -- fds and files -------------------------------------------------------------------------
    def install_fd(self, fd: str, inode: ShmemInode, writable: bool) -> None:
        """A new fd: held from now by every live task whose ops name it."""
        old = self.m.files.get(fd)
        if old is not None:
            for p in self.procs.values():
                close_fd(self.m, p.task, fd)
        self.m.files[fd] = inode
        self.fd_modes[fd] = writable
        for name in self.fd_users.get(fd, ()):
            t = self.procs[name].task
            if not t.exited:
                t.fds.add(fd)
                inode.holders.add(t.pid)

    def fd_writable(self, fd: str) -> bool:
        """Whether the fd was opened for writing."""
        return self.fd_modes.get(fd, False)

    def tmpfs_lookup(self, path: str) -> ShmemInode:
        """The tmpfs file at `path`, created (empty, linked) if absent."""
        inode = self.tmpfs.get(path)
        if inode is not None:
            return inode
        mnt = max((mp for mp in self.m.mounts if path.startswith(mp.rstrip("/") + "/")), key=len)
        inode = ShmemInode(ino=self.m.next_ino, name=path, sb=self.m.mounts[mnt], linked=True)
        self.m.next_ino += 1
        self.tmpfs[path] = inode
        return inode

    # -- running -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run to the scenario's duration (or until nothing is left to happen)."""
        with frozen_heap():
            return self._run()

    def _run(self) -> RunResult:
        env = self.env
        for p in self.procs.values():
            p.task.process = env.process(run_task(p))
        duration = parse_seconds(self.sc.duration)
        panic = None
        try:
            env.run(until=duration)
        except KernelPanic as e:
            panic = str(e)
            self.m.log.emit("panic", detail=panic)
        end = env.now
        for p in self.procs.values():
            if p.outcome is None:
                if panic is not None:
                    p.finish("panic", reason=panic)
                else:
                    t = p.task
                    reason = t.wait_reason or p.wait_reason or "the duration ran out"
                    p.outcome = TaskOutcome("hung", None, p.op_index, p.op_name,
                                            t.cursor if p.op_name == "touch" else p.page, end, reason)
        if self.check and panic is None:
            check_invariants(self.m)
        return RunResult(
            scenario=self.sc.name, seed=self.seed, kernel=self.kernel,
            tasks={n: p.outcome for n, p in self.procs.items() if p.outcome is not None},
            oom_kills=list(self.m.oom_kills), events=self.m.log.records,
            counters=counters(self.m), end_time=end, panic=panic, what_if=self.what_if,
        )


def simulate(sc: Scenario, seed: int | None = None, **kw: Any) -> RunResult:
    """Build and run a scenario once."""
    return Run(sc, seed=seed, **kw).run()


def fd_users(sc: Scenario) -> dict[str, set[str]]:
    """For each fd name, the tasks whose ops name it (they hold it from its creation)."""
    users: dict[str, set[str]] = {}
    for t in sc.tasks:
        for o in t.ops:
            fd = getattr(op_args(o), "fd", None)
            if isinstance(fd, str):
                users.setdefault(fd, set()).add(t.name)
    return users


# -- building -----------------------------------------------------------------------------------
def build_machine(sc: Scenario, env: simpy.Environment, kernel: str, what_if: WhatIf) -> Machine:
    """Nodes with watermarks, the memcg tree, mounts, overcommit state, costs."""
    ps = parse_bytes(sc.machine.page_size)
    page_kb = ps // 1024
    nodes = []
    for i, ns in enumerate(sc.machine.nodes):
        present = parse_pages(ns.memory, ps)
        reserved = present // 64 if ns.reserved is None else parse_pages(ns.reserved, ps)
        if reserved >= present:
            raise ScenarioError("reserved is not smaller than memory", ("machine", "nodes", i, "reserved"))
        n = len(sc.machine.nodes)
        dist = ns.distance or [10 if j == i else 20 for j in range(n)]
        nodes.append(Node(nid=i, present=present, managed=present - reserved, distance=dist))
    managed = [n.managed for n in nodes]
    s = sc.sysctl
    min_free = s.min_free_kbytes if s.min_free_kbytes is not None else calculate_min_free_kbytes(
        sum(managed) * page_kb)
    for n, wm in zip(nodes, setup_per_zone_wmarks(managed, min_free, s.watermark_scale_factor, page_kb),
                     strict=True):
        n.watermark = wm
        n.free = n.managed
    free_kb = sum(managed) * page_kb
    oc = Overcommit(
        mode=s.overcommit_memory, ratio=s.overcommit_ratio, kbytes=s.overcommit_kbytes,
        admin_reserve_pages=(s.admin_reserve_kbytes if s.admin_reserve_kbytes is not None
                             else min(free_kb // 32, 8192)) // page_kb,
        user_reserve_pages=(s.user_reserve_kbytes if s.user_reserve_kbytes is not None
                            else min(free_kb // 32, 131072)) // page_kb,
    )
    given = {k: parse_seconds(v) for k, v in sc.machine.costs.model_dump().items() if v is not None}
    if sc.machine.profile is not None:  # a measured machine profile fills in the rest
        from .machine_profile import profile_costs

        given = {**profile_costs(sc.machine.profile), **given}
    costs = Costs(**given)
    root = MemCgroup(path="/")
    m = Machine(
        env=env, page_size=ps, nodes=nodes, root=root, profile=PROFILES[kernel], what_if=what_if,
        overcommit=oc, sysctl={"panic_on_oom": s.panic_on_oom,
                               "oom_kill_allocating_task": s.oom_kill_allocating_task,
                               "swappiness": s.swappiness},
        costs=costs, total_swap=parse_pages(sc.machine.swap, ps),
        page_cache_pages=parse_pages(sc.machine.page_cache, ps),
    )
    ram_pages = sum(n.present for n in nodes)
    for path in sorted(sc.cgroups, key=lambda p: p.count("/")):
        spec = sc.cgroups[path]
        parent = ensure_memcg(m, path.rsplit("/", 1)[0] or "/")
        c = MemCgroup(path=path, parent=parent)
        c.max = limit_pages(spec.memory_max, ps, ram_pages)
        c.high = limit_pages(spec.memory_high, ps, ram_pages)
        c.swap_max = limit_pages(spec.memory_swap_max, ps, ram_pages)
        c.low = parse_pages(spec.memory_low, ps, ram_pages)
        c.min = parse_pages(spec.memory_min, ps, ram_pages)
        c.oom_group = spec.memory_oom_group
        c.oom_kill_disable = spec.memory_oom_kill_disable
        parent.children.append(c)
        m.memcgs[path] = c
    for mnt in sc.mounts:
        size = ram_pages // 2 if mnt.size is None else parse_pages(mnt.size, ps, ram_pages)
        m.mounts[mnt.path] = ShmemSb(path=mnt.path, max_blocks=size, noswap=mnt.noswap)
    return m


def ensure_memcg(m: Machine, path: str) -> MemCgroup:
    """The memcg at `path`, creating unnamed parents with default settings (like mkdir -p)."""
    if path in m.memcgs:
        return m.memcgs[path]
    parent = ensure_memcg(m, path.rsplit("/", 1)[0] or "/")
    c = MemCgroup(path=path, parent=parent)
    parent.children.append(c)
    m.memcgs[path] = c
    return c


def limit_pages(v: Any, ps: int, ram_pages: int) -> int:
    """A memcg limit in pages (`max` is no limit)."""
    return PAGE_COUNTER_MAX if v == "max" else parse_bytes(v, ram_pages * ps) // ps


def build_task(m: Machine, spec: Any, pid: int, rng: np.random.Generator) -> TaskStruct:
    """A process as forked: its footprint charged to its memcg, its page tables, ASLR base."""
    ps = m.page_size
    memcg = m.memcgs[spec.cgroup]
    fp = spec.footprint
    mm = MM()
    t = TaskStruct(
        pid=pid, name=spec.name, memcg=memcg, mm=mm, oom_score_adj=spec.oom_score_adj,
        caps=frozenset(spec.capabilities),
        rlimit_memlock=(1 << 62) if spec.rlimits.memlock == "max"
        else parse_bytes(spec.rlimits.memlock) // ps,
        node=spec.node,
    )
    t.exit_event = m.env.event()
    anon, kernel = parse_pages(fp.anon, ps), parse_pages(fp.kernel, ps)
    pts = max(len(PT_SHIFTS), parse_pages(fp.page_tables, ps))
    total = anon + kernel + pts
    nodes = m.zonelist(t.node)
    if sum(max(0, n.free - n.min_wmark()) for n in nodes) < total:
        raise ScenarioError(f"the machine has no room for task {spec.name}'s footprint")
    page_counter_charge(memcg, anon + m.kmem_charge(kernel + pts))
    parts = take_pages(nodes, total)
    for pn, cnt in parts:
        take_a = min(cnt, anon)
        if take_a:
            m.anon_stat(t, pn, take_a)
        rest = cnt - take_a
        anon -= take_a
        take_k = min(rest, kernel)
        if take_k:
            mm.kernel_nodes[pn] += take_k
            mod_memcg_state(memcg, "kernel", m.kmem_charge(take_k))
            m.nodes[pn].stat["kernel"] += take_k
        kernel -= take_k
        rest -= take_k
        if rest:
            mm.pt_nodes[pn] += rest
            m.pgtable_stat(memcg, pn, rest)
    base = MMAP_TOP - (128 << 20) // ps - int(rng.integers(0, MMAP_RND_PAGES))
    for s in PT_SHIFTS:  # the libraries' page tables just below mmap_base
        mm.pt[s].fill((base - 1) >> s, ((base - 1) >> s) + 1, 0)
    mm.mmap_base = base - LIB_PAGES
    mm.total_vm = parse_pages(fp.vm, ps)
    committed = parse_pages(fp.committed, ps)
    m.overcommit.vm_acct_memory(committed)
    mm.committed = committed
    memcg.tasks[t] = None
    m.tasks.append(t)
    return t


def counters(m: Machine) -> dict[str, Any]:
    """Final counters: per memcg, per node, overcommit, swap, files."""
    return {
        "memcg": {
            path: {"usage_pages": c.usage, "max_usage_pages": c.watermark, **c.stat,
                   **{f"peak_{k}": v for k, v in c.peak.items()}, "events": dict(c.events),
                   "swap_current_pages": c.swap_usage, "swap_peak_pages": c.swap_watermark,
                   "swap_events": dict(c.swap_events)}
            for path, c in m.memcgs.items()
        },
        "swap": {"total_pages": m.swap.pages, "used_pages": m.swap.inuse,
                 "free_pages": m.swap.nr_free(), "pswpin": m.swap.pswpin,
                 "pswpout": m.swap.pswpout},
        "nodes": [{"nid": n.nid, "managed": n.managed, "free": n.free,
                   "min": n.min_wmark(), "low": n.low_wmark(), "high": n.high_wmark(), **n.stat}
                  for n in m.nodes],
        "committed_as_pages": m.overcommit.committed_as,
        "commit_limit_pages": m.commit_limit(),
        "files": {fd: {"pages": len(i.pages), "size": i.size, "seals": sorted(i.seals),
                       "evicted": i.evicted, "swapped": len(i.swap)}
                  for fd, i in m.files.items()},
    }
