"""Build a machine and its tasks from a validated scenario, run it, return the results."""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from .engine.engines import BULK, REFERENCE
from .engine.rng import frozen_heap, task_rng
from .mm.booking import anon_footprint, kernel_pages_added, pgtables_added
from .mm.debug import check_invariants
from .mm.file import FdTable
from .mm.kswapd import kswapd
from .mm.levels import LevelLog, NoLevels, level_series
from .mm.machine import Costs, Machine
from .mm.memcontrol import (
    PAGE_COUNTER_MAX,
    MemCgroup,
    mem_cgroup_css_alloc_oom_kill_disable,
    page_counter_charge,
)
from .mm.mempolicy import (
    MPOL_DEFAULT,
    Mempolicy,
    allowed_zonelist,
    cpuset_current_mems_allowed,
    cpuset_effective_mems,
    interleaved,
    mpol_set_nodemask,
    step_zonelist,
)
from .mm.mm_types import MM, PT_SHIFTS
from .mm.oom_kill import KernelPanic
from .mm.overcommit import Overcommit
from .mm.page_alloc import Node, calculate_min_free_kbytes, setup_per_zone_wmarks, take_pages
from .mm.profiles import PROFILES, WhatIf
from .mm.psi import now_ns, psi_show
from .mm.shmem_inode import ShmemSb
from .mm.task import TaskStruct
from .outcome import DURATION_RAN_OUT, RunResult, TaskOutcome
from .plan import Plan, TaskPlan, resolve
from .scenario_errors import ScenarioError
from .scenario_model import Scenario, TaskSpec
from .tasks import Proc, run_task
from .userspace.start import start_userspace_oom

MMAP_TOP = 0x7FFFF7FFF000 >> 12  # pages; the top of the mmap area before randomisation
MMAP_RND_PAGES = 1 << 28  # x86-64 mmap_rnd_bits = 28
LIB_PAGES = 512  # shared libraries and the like just below mmap_base


class Run:
    """One simulated run: the machine, its processes, the scenario's fds and tmpfs files.
    `levels=False`: the run keeps no level records (its `levels` is empty), for an output
    that shows none."""

    def __init__(self, sc: Scenario | Plan, seed: int | None = None, reference: bool = False,
                 kernel: str | None = None, what_if: dict[str, Any] | None = None,
                 check_invariants: bool = True, debug_vm: bool = False, levels: bool = True
                 ) -> None:
        with frozen_heap():  # the collector off the scenario and the machine built
            if isinstance(sc, Plan):
                self.plan = sc
            else:
                self.plan = resolve(sc)
            sc = self.plan.scenario
            self.sc = sc
            self.seed = sc.seed if seed is None else seed
            self.kernel = kernel or sc.kernel
            wi = sc.what_if.model_dump()
            wi.update(what_if or {})
            self.what_if = wi
            self.env = simpy.Environment()
            self.m = build_machine(self.plan, self.env, self.kernel, WhatIf(**wi), levels)
            self.m.engine = REFERENCE if reference else BULK
            self.m.debug_vm = debug_vm
            self.check = check_invariants
            self.procs: dict[str, Proc] = {}
            self.dcache = self.m.dcache  # the files opened by path so far
            for i, tp in enumerate(self.plan.tasks):
                spec = tp.spec
                t = build_task(self.m, self.plan, tp, pid=100 + i, rng=task_rng(self.seed, spec.name))
                p = Proc(sim=self, m=self.m, task=t, spec=spec, plan=tp)
                p.ops_done = self.env.event()
                self.procs[spec.name] = p
            self.fdt = FdTable.of((p.task for p in self.procs.values()), self.plan.fd_users)

    # -- running -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run to the scenario's duration (or until nothing is left to happen)."""
        with frozen_heap():
            return self._run()

    def _run(self) -> RunResult:
        env = self.env
        for node in self.m.nodes:
            env.process(kswapd(self.m, node))
        for p in self.procs.values():
            p.task.process = env.process(run_task(p))
        start_userspace_oom(self.m, self.sc.userspace_oom)
        duration = self.plan.duration
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
                    reason = t.wait_reason or p.wait_reason or DURATION_RAN_OUT
                    p.outcome = TaskOutcome("hung", None, p.op_index, p.op_name,
                                            t.cursor if p.op_name == "touch" else p.page, end, reason)
        if self.check:
            check_invariants(self.m)
        return RunResult(
            scenario=self.sc.name, seed=self.seed, kernel=self.kernel,
            tasks={n: p.outcome for n, p in self.procs.items() if p.outcome is not None},
            oom_kills=list(self.m.oom_kills), events=self.m.log.records,
            counters=counters(self.m), end_time=end, panic=panic, what_if=self.what_if,
            levels=level_series(self.m.levels),
        )


def simulate(sc: Scenario | Plan, seed: int | None = None, **kw: Any) -> RunResult:
    """Build and run a scenario (or its resolved plan) once."""
    return Run(sc, seed=seed, **kw).run()


# -- building -----------------------------------------------------------------------------------
def build_machine(plan: Plan, env: simpy.Environment, kernel: str, what_if: WhatIf,
                  levels: bool = True) -> Machine:
    """Nodes with watermarks, the memcg tree, mounts, overcommit state, costs; `levels=False`:
    no level records (`NoLevels`), for a run whose output shows none."""
    sc, ps = plan.scenario, plan.page_size
    page_kb = ps // 1024
    nodes = [Node(nid=i, present=n.present, managed=n.present - n.reserved, distance=n.distance)
             for i, n in enumerate(plan.nodes)]
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
    root = MemCgroup(path="/")
    m = Machine(
        env=env, page_size=ps, nodes=nodes, root=root, profile=PROFILES[kernel], what_if=what_if,
        overcommit=oc, sysctl={"panic_on_oom": s.panic_on_oom,
                               "oom_kill_allocating_task": s.oom_kill_allocating_task,
                               "swappiness": s.swappiness},
        costs=Costs(**plan.costs), total_swap=plan.swap_pages, swap_kind=plan.swap_kind,
        page_cache_pages=plan.page_cache_pages,
        cpusets_enabled=any(c.mems is not None for c in plan.cgroups.values()),
        levels=LevelLog(env) if levels else NoLevels(env),
    )
    for path in sorted(plan.cgroups, key=lambda p: p.count("/")):
        cp = plan.cgroups[path]
        parent = ensure_memcg(m, path.rsplit("/", 1)[0] or "/")
        c = MemCgroup(path=path, parent=parent)
        c.max = PAGE_COUNTER_MAX if cp.max is None else cp.max
        c.high = PAGE_COUNTER_MAX if cp.high is None or not m.profile.memcg_high else cp.high
        c.swap_max = PAGE_COUNTER_MAX if cp.swap_max is None else cp.swap_max
        c.memsw_max = PAGE_COUNTER_MAX if cp.memsw_max is None else cp.memsw_max
        c.swappiness = cp.swappiness
        c.low = cp.low
        c.min = cp.min
        c.oom_group = cp.oom_group
        c.oom_kill_disable = mem_cgroup_css_alloc_oom_kill_disable(parent, cp.oom_kill_disable)
        parent.children.append(c)
        m.memcgs[path] = c
    for mnt in plan.mounts:
        if mnt.disk:
            m.mounts[mnt.path] = ShmemSb(path=mnt.path, noswap=True, disk=True,
                                         disk_files=dict(mnt.files))
        else:
            m.mounts[mnt.path] = ShmemSb(path=mnt.path, max_blocks=mnt.pages, noswap=mnt.noswap)
    return m


def ensure_memcg(m: Machine, path: str) -> MemCgroup:
    """The memcg at `path`, creating unnamed parents with default settings (like mkdir -p)."""
    if path in m.memcgs:
        return m.memcgs[path]
    parent = ensure_memcg(m, path.rsplit("/", 1)[0] or "/")
    c = MemCgroup(path=path, parent=parent)
    c.oom_kill_disable = mem_cgroup_css_alloc_oom_kill_disable(parent, None)
    parent.children.append(c)
    m.memcgs[path] = c
    return c


def build_task(m: Machine, plan: Plan, tp: TaskPlan, pid: int,
               rng: np.random.Generator) -> TaskStruct:
    """A process as forked: its footprint charged to its memcg, its page tables, ASLR base."""
    ps = m.page_size
    spec = tp.spec
    memcg = m.memcgs[spec.cgroup]
    mm = MM()
    t = TaskStruct(
        pid=pid, name=spec.name, memcg=memcg, mm=mm, oom_score_adj=spec.oom_score_adj,
        caps=frozenset(spec.capabilities),
        rlimit_memlock=(1 << 62) if tp.rlimit_memlock_pages is None else tp.rlimit_memlock_pages,
        node=spec.node, sigterm_handled=spec.sigterm == "ignore",
    )
    t.mems_allowed, t.mempolicy = task_numa(m, plan, spec)
    t.exit_event = m.env.event()
    anon, kernel = tp.anon_pages, tp.kernel_pages
    pts = max(len(PT_SHIFTS), tp.page_table_pages)
    total = anon + kernel + pts
    nodes = footprint_zonelist(m, t)
    if sum(max(0, n.free - n.min_wmark()) for n in nodes) < total:
        raise ScenarioError(f"the machine has no room for task {spec.name}'s footprint")
    page_counter_charge(memcg, anon + m.kmem_charge(kernel + pts))
    parts = take_pages(nodes, total)
    for pn, cnt in parts:
        take_a = min(cnt, anon)
        anon_footprint(m, t, pn, take_a)
        rest = cnt - take_a
        anon -= take_a
        take_k = min(rest, kernel)
        kernel_pages_added(m, t, pn, take_k)
        kernel -= take_k
        rest -= take_k
        pgtables_added(m, t, pn, rest)
    base = MMAP_TOP - (128 << 20) // ps - int(rng.integers(0, MMAP_RND_PAGES))
    for s in PT_SHIFTS:  # the libraries' page tables just below mmap_base
        mm.pt[s].fill((base - 1) >> s, ((base - 1) >> s) + 1, 0)
    mm.mmap_base = mm.lib_start = base - LIB_PAGES
    mm.total_vm = tp.vm_pages
    committed = tp.committed_pages
    m.overcommit.vm_acct_memory(committed)
    mm.committed = committed
    memcg.tasks[t] = None
    m.tasks.append(t)
    return t


def footprint_zonelist(m: Machine, t: TaskStruct) -> list[Node]:
    """Where a task's footprint comes from: its policy's zonelist; an interleaving task's
    footprint is taken as if local (its image predates the policy), within its cpuset."""
    if interleaved(t):
        return allowed_zonelist(m, t.node, cpuset_current_mems_allowed(m, t))
    return step_zonelist(m, t)


def task_numa(m: Machine, plan: Plan, spec: TaskSpec) -> tuple[tuple[int, ...] | None, Mempolicy]:
    """A task's cpuset mems (`cpuset_effective_mems` along its cgroup's ancestry; None when no
    cgroup sets cpuset.mems) and its policy (`mpol_set_nodemask`)."""
    mems = None
    if m.cpusets_enabled:
        parts = spec.cgroup.strip("/").split("/") if spec.cgroup != "/" else []
        paths = ["/"] + ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]
        chain = [plan.cgroups[p].mems if p in plan.cgroups else None for p in paths]
        mems = cpuset_effective_mems(chain, tuple(range(len(m.nodes))))
    mp = spec.mempolicy
    if mp is None:
        return mems, Mempolicy(MPOL_DEFAULT)
    return mems, mpol_set_nodemask(mp.mode, tuple(mp.nodes or ()), mems)


def node_counters(n: Node) -> dict[str, Any]:
    """A node's final counters: free pages and its watermarks, each page counter of its
    `stat` (a new item there is a new column here) with its peak, and `peak_free`, the fewest
    free pages it had."""
    return {"nid": n.nid, "managed": n.managed, "free": n.free,
            "min": n.min_wmark(), "low": n.low_wmark(), "high": n.high_wmark(), **n.stat,
            **{f"peak_{k}": v for k, v in n.stat.peak.items()},
            "peak_free": n.free if n.lowest_free is None else min(n.free, n.lowest_free),
            "kswapd_wakeups": n.kswapd_wakeups}


def counters(m: Machine) -> dict[str, Any]:
    """Final counters: per memcg, per node, overcommit, swap, files, and the system's memory
    pressure (the root memcg's is the same group)."""
    now = now_ns(m)
    return {
        "memcg": {
            path: {"usage_pages": c.usage, "max_usage_pages": c.watermark, **c.stat,
                   **{f"peak_{k}": v for k, v in c.peak.items()}, "events": dict(c.events),
                   "swap_current_pages": c.swap_usage, "swap_peak_pages": c.swap_watermark,
                   "swap_events": dict(c.swap_events), "memsw_peak_pages": c.memsw_watermark,
                   **c.vmscan, "pressure": psi_show(c.psi, now)}
            for path, c in m.memcgs.items()
        },
        "pressure": psi_show(m.root.psi, now),
        "swap": {"total_pages": m.swap.pages, "kind": m.swap.kind, "used_pages": m.swap.inuse,
                 "free_pages": m.swap.nr_free(), "pswpin": m.swap.pswpin,
                 "pswpout": m.swap.pswpout},
        "nodes": [node_counters(n) for n in m.nodes],
        "committed_as_pages": m.overcommit.committed_as,
        "commit_limit_pages": m.commit_limit(),
        "files": {fd: {"pages": len(i.pages), "size": i.size, "seals": sorted(i.seals),
                       "evicted": i.evicted, "swapped": len(i.swap)}
                  for fd, i in m.files.items()},
    }
