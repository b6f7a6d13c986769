"""Which pending events can interact with a walk: the ones its slice must stop at.

A slice books its pages at its start (slicing.py), so an event inside it sees the whole
slice. A walk may pass an event only when what the woken process does before the walk's end
cannot change what the walk's closed form reads, nor read what the walk changes, in a way that
decides anything. For an anonymous walk (its pages private to its mm, charged to its memcg,
taken from the allocator) that state is:

- the page counters of the memcgs whose limits can bind it (`binding`): memory.max and
  memory.high of its memcg and of each ancestor whose limit can be reached at all. An
  ancestor whose limits are at least the sum of its children's caps, with no task of its own,
  never binds (the kernel's check is the same `page_counter_try_charge` walk: it only fails
  where a counter is at its max), so /svc above sixteen leaves does not couple them;
- the nodes' free pages against their watermarks (placement, kswapd, the slow path, the
  global OOM killer): every node must keep more free pages above its high watermark than
  every memcg subtree acting in the window could take (its max: all of its usage, counted on
  every node one of its acting tasks allocates from), so that no watermark is met, no
  fallback or kswapd wakeup happens and every allocation goes where it would have anyway;
- its task's RSS (read by an OOM kill among its binding memcgs' tasks only, once no
  watermark can be met) and its pending signals (sent by those OOM kills only).

A walk of a map of a shmem file (`walked_file`) also reads the file's page cache, size and
seals: only on a mount without a size and without a commit limit on the file's pages, and the
tasks that can reach the file (`holds`, or an open(2) left) are not passed.

So a pending event may be passed when it wakes (a) a task whose binding memcgs are all
unrelated to the walk's, whose every remaining op is one of `LOCAL_OPS` (ops that act on the
task's own mm, files and memcg: no cgroup, policy, signal or reclaim-request op), and that no
other task waits on; or (b) an RCU page-table free or the OOM reaper of such a memcg (they only
free). Whatever these wake in turn (OOM victims, the reaper, page-table frees, writeback) acts
inside their own binding memcgs, or only frees. Nothing is passed when any task waits on a
global OOM or on its memcg's OOM in the walk's hierarchy, when the machine has swap (slots
and swap-ins are shared), when page tables are not charged (3.15: pages no memcg bounds), or
when a task or a subtree has no finite memory.max.

Both engines slice alike: the rule reads only the state at a slice's start (counters and
the queue of pending events), which the bulk and the per-page reference engines agree on.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from ..mm.memcontrol import PAGE_COUNTER_MAX
from ..mm.mempolicy import MPOL_INTERLEAVE, alloc_pages_mpol, allowed_nodes
from ..mm.overcommit import guess_free_2014, vm_commit_margin
from ..mm.pagecache import is_disk_file

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.memcontrol import MemCgroup
    from ..mm.mm_types import VMA
    from ..mm.shmem_inode import ShmemInode
    from ..mm.task import TaskStruct

INF = float("inf")
# Ops acting only on the task's own mm, fds, files and memcg (whatever they allocate is
# charged to it); a task with any other op left is taken to interact with every walk.
LOCAL_OPS = frozenset({
    "memfd_create", "open", "close", "ftruncate", "add_seals", "read", "write", "fallocate",
    "mmap", "munmap", "mprotect", "touch", "mlock", "mlock2", "munlock", "madvise",
    "alloc_anon", "oom_score_adj", "sleep", "exit",
})
MAX_PASSED = 64  # pending events looked at per slice, at most (then the slice stops there)
FORCED_SLACK = 1024  # pages a subtree may be over its max by forced charges (page tables...)


class Interactions:
    """What the rule needs of one run, worked out once: each memcg's binding ancestors and
    usage bound, and each process's kind."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.binding_of: dict[MemCgroup, frozenset[MemCgroup]] = {}
        self.bound_of: dict[MemCgroup, tuple[MemCgroup, int] | None] = {}
        self.cap_of: dict[MemCgroup, int] = {}
        self.kind_of: dict[Any, Any] = {}
        self.local_from: dict[Any, list[bool]] = {}
        self.awaited: set[str] | None = None

    def cap(self, c: MemCgroup) -> int:
        """The most pages `c`'s subtree can hold: its max, or its children's caps when it has
        no task of its own and they add up to less (its usage is theirs)."""
        v = self.cap_of.get(c)
        if v is None:
            v = min(c.max, c.memsw_max)
            if c.children and not c.tasks:
                v = min(v, sum(self.cap(k) + FORCED_SLACK for k in c.children))
            self.cap_of[c] = v
        return v

    def binding(self, memcg: MemCgroup) -> frozenset[MemCgroup]:
        """The ancestors of `memcg` (itself included) whose memory.max or memory.high a charge
        can meet: those whose limit is below what their subtree can hold otherwise."""
        b = self.binding_of.get(memcg)
        if b is None:
            out = []
            for c in memcg.ancestors():
                if c.parent is None:
                    continue
                limit = min(c.max, c.high, c.memsw_max)
                if limit >= PAGE_COUNTER_MAX:
                    continue
                if c.children and not c.tasks and sum(
                        self.cap(k) + FORCED_SLACK for k in c.children) <= limit:
                    continue
                out.append(c)
            b = self.binding_of[memcg] = frozenset(out)
        return b

    def bound(self, memcg: MemCgroup) -> tuple[MemCgroup, int] | None:
        """The subtree that bounds what tasks of `memcg` can hold, and that bound in pages: the
        ancestor of least max (None: no finite max above it)."""
        if memcg in self.bound_of:
            return self.bound_of[memcg]
        best: tuple[MemCgroup, int] | None = None
        for c in memcg.ancestors():
            cap = self.cap(c) if c.parent is not None else PAGE_COUNTER_MAX
            if cap < PAGE_COUNTER_MAX and (best is None or cap + FORCED_SLACK < best[1]):
                best = (c, cap + FORCED_SLACK)
        self.bound_of[memcg] = best
        return best

    def kind(self, proc: Any) -> Any:
        """What a process is: its Proc for a task, a memcg for a process that only frees
        pages charged to it (RCU page-table free, OOM reaper), or None."""
        if proc in self.kind_of:
            return self.kind_of[proc]
        gen = getattr(proc, "_generator", None)
        k: Any = None
        if gen is not None and gen.gi_frame is not None:
            name = gen.gi_code.co_name
            loc = gen.gi_frame.f_locals
            if name == "run_task":
                k = loc.get("p")
            elif name == "tlb_remove_table_rcu":
                k = loc.get("memcg")
            elif name == "oom_reap_task":
                t = loc.get("task")
                k = None if t is None else t.memcg
        self.kind_of[proc] = k
        return k

    def ops_local(self, p: Any, i: int) -> bool:
        """Whether every op of `p` from the i-th on is one of LOCAL_OPS."""
        flags = self.local_from.get(p)
        if flags is None:
            ops = p.plan.ops
            flags = [True] * (len(ops) + 1)
            for j in range(len(ops) - 1, -1, -1):
                flags[j] = flags[j + 1] and ops[j].name in LOCAL_OPS
            self.local_from[p] = flags
        return flags[i]

    def opens(self, p: Any, i: int) -> bool:
        """Whether `p` has an open(2) among its ops from the i-th on (it may reach a linked
        file by its path)."""
        return any(o.name == "open" for o in p.plan.ops[i:])

    def waited_on(self, p: Any) -> bool:
        """Whether some task starts once `p` has run its ops (`after`)."""
        if self.awaited is None:
            self.awaited = {q.plan.after for q in p.sim.procs.values() if q.plan.after}
        return p.spec.name in self.awaited


def interactions(m: Machine) -> Interactions:
    """The machine's Interactions, made on first use."""
    it = m.__dict__.get("_interactions")
    if it is None:
        it = m.__dict__["_interactions"] = Interactions(m)
    return it


def alloc_nodes(m: Machine, task: TaskStruct) -> tuple[int, ...]:
    """The nodes `task`'s allocations come from while every node is above its low watermark:
    the first of its policy's zonelist, or every allowed node under interleave."""
    if task.mempolicy.mode == MPOL_INTERLEAVE:
        return tuple(n.nid for n in allowed_nodes(m, task))
    return (alloc_pages_mpol(m, task)[0].nid,)


def walked_file(m: Machine, task: TaskStruct, vma: VMA) -> tuple[bool, ShmemInode | None]:
    """Whether a walk of `vma` by `task` may pass events at all, and the shmem file it maps
    (None: anonymous). A mapped shmem file qualifies when no limit but the memcgs' and the
    nodes' can stop its steps: an unlimited mount, no commit limit on its pages; a disk
    file's page cache is reclaimable and never does."""
    inode = vma.file
    if inode is None:
        return True, None
    if is_disk_file(inode) or inode.sb.free_blocks() is not None:
        return False, None
    if inode.noreserve and (vm_commit_margin(m, task) is not None
                            or guess_free_2014(m, task) is not None):
        return False, None
    return True, inode


def holds(m: Machine, t: TaskStruct, inode: ShmemInode) -> bool:
    """Whether task `t` can reach `inode`: by an fd it holds or a map of it."""
    if any(m.files.get(fd) is inode for fd in t.fds):
        return True
    mm = t.mm
    return mm is not None and any(v.file is inode for v in mm.vmas.values())


def anon_walk_stop(m: Machine, task: TaskStruct, until: float,
                   inode: ShmemInode | None = None) -> float:
    """The time of the first pending event before `until` that a walk by `task` (of an
    anonymous map, or of a map of shmem file `inode` that `walked_file` let through) must
    stop at (see the module's rule); `until` if none."""
    q = m.env._queue
    if not q or q[0][0] >= until:
        return until
    first = q[0][0]
    if m.swap.pages or m.oom_waiters or not m.kmem_charge(1):
        return first
    it = interactions(m)
    mine = it.binding(task.memcg)
    if any(c.waiters for c in mine):
        return first
    own = it.bound(task.memcg)
    if own is None:
        return first
    room = [n.free - n.high_wmark() for n in m.nodes]
    counted: set[tuple[MemCgroup, int]] = set()

    def takes(memcg: MemCgroup, key: tuple[MemCgroup, int], nodes: tuple[int, ...]) -> bool:
        """Count `key`'s subtree on `nodes`; False if some node could then meet a watermark."""
        for nid in nodes:
            if (key[0], nid) not in counted:
                counted.add((key[0], nid))
                room[nid] -= key[1]
                if room[nid] <= 0:
                    return False
        return True

    if not takes(task.memcg, own, alloc_nodes(m, task)):
        return first
    frontier = [(first, q[0][1], q[0][2], 0)]
    seen = 0
    size = len(q)
    while frontier:
        t, _, _, i = heappop(frontier)
        if t >= until:
            return until
        seen += 1
        if seen > MAX_PASSED or not passable(m, it, q[i][3], task, mine, takes, inode):
            return t
        for c in (2 * i + 1, 2 * i + 2):
            if c < size:
                e = q[c]
                heappush(frontier, (e[0], e[1], e[2], c))
    return until


def passable(m: Machine, it: Interactions, ev: Any, task: TaskStruct,
             mine: frozenset[MemCgroup], takes: Any, inode: ShmemInode | None = None) -> bool:
    """Whether a walk by `task` (binding memcgs `mine`, of a map of `inode` if any) may pass
    event `ev` (see the module)."""
    cbs = ev.callbacks
    if not cbs or len(cbs) != 1:
        return False
    proc = getattr(cbs[0], "__self__", None)
    k = it.kind(proc)
    if k is None:
        return False
    if not hasattr(k, "plan"):  # a process that only frees pages charged to memcg k
        return it.binding(k).isdisjoint(mine)
    t = k.task
    if t is task or not it.binding(t.memcg).isdisjoint(mine):
        return False
    if t.exiting:  # do_exit: its mm and fds go (frees only; the walk's map keeps the file)
        return True
    if it.waited_on(k) or not it.ops_local(k, k.op_index or 0):
        return False
    if inode is not None and (holds(m, t, inode) or it.opens(k, k.op_index or 0)):
        return False
    key = it.bound(t.memcg)
    return key is not None and bool(takes(t.memcg, key, alloc_nodes(m, t)))
