"""Hypothesis strategies: small random but valid scenarios for the differential tests.

`scenario_dicts()` draws the YAML-equivalent dict of a scenario on a machine of a few MiB: a
setup task that creates a few files (memfds with or without sealing, tmpfs files on small
mounts, files of a disk mount, read into the page cache by read(2), faults and write(2)),
gives them sizes, fills some ranges and seals some; then a few workers in memcgs
(nested, limits of a few hundred pages, oom.group, v1 oom_kill_disable) running random ops on
those files (mmap, touch with every pattern, sparse touches of a few pages (fault-around
windows half cached), mlock and munlock of ranges, MADV_POPULATE, fallocate, write, read,
ftruncate, punch_hole, alloc_anon, ...), under overcommit modes 0/1/2, kernel profiles 6.18
and 3.15, with and without the zero-page and charge-at-seal what-ifs, with or without a small
swap device (pages go out by MADV_PAGEOUT, under memory.swap.max limits and `noswap` mounts,
and come back by faults, read, write and fallocate). `scenarios()` validates them into
`Scenario` models. Every size is a whole number of 4 KiB pages unless a write or read says
otherwise, and every memcg limit leaves room for the footprints of the tasks inside it (the
fork-time charge is forced and must not overshoot a limit).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from simulator.scenario import Scenario
from simulator.validify import validify

PAGE = 4096
CGROUP_TREES = [[], ["/a"], ["/a", "/b"], ["/a", "/a/b"], ["/a", "/a/b", "/c"]]
SEALS = ["write", "shrink", "grow", "future_write", "seal"]
MAP_OP_KINDS = ["touch", "touch", "touch", "touch", "mlock", "madvise", "madvise", "munmap",
                "mprotect", "mlock2", "pageout", "pageout", "munlock"]
FD_OP_KINDS = ["fallocate", "write", "read", "ftruncate", "punch_hole", "add_seals", "close"]
CHANGE_KINDS = ["fallocate", "fallocate", "write", "ftruncate", "punch_hole", "punch_hole"]


def kib(pages: int) -> str:
    """A size in the YAML's units."""
    return f"{pages * PAGE // 1024}KiB"


@st.composite
def footprints(draw: Any) -> dict[str, Any]:
    """A small per-task footprint (pages charged at fork)."""
    return {
        "anon": kib(draw(st.integers(1, 16))),
        "kernel": kib(draw(st.integers(1, 4))),
        "page_tables": kib(draw(st.integers(3, 8))),
        "committed": kib(draw(st.integers(1, 64))),
    }


def footprint_pages(fp: dict[str, Any]) -> int:
    """Pages a footprint charges to the task's memcg."""
    return sum(int(fp[k][:-3]) * 1024 // PAGE for k in ("anon", "kernel", "page_tables"))


@st.composite
def page_range(draw: Any, npages: int) -> list[int]:
    """A byte range [start, end) of whole pages inside a map of npages."""
    a = draw(st.integers(0, npages - 1))
    b = draw(st.integers(a + 1, npages))
    return [a * PAGE, b * PAGE]


@st.composite
def extent(draw: Any, size: int) -> tuple[int, int]:
    """A page offset and length inside a file of `size` pages, or now and then past its end."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.integers(0, size + 8)), draw(st.integers(1, size + 8))
    off = draw(st.integers(0, size - 1))
    return off, draw(st.integers(1, size - off))


@st.composite
def file_op(draw: Any, f: dict[str, Any], kinds: list[str] = FD_OP_KINDS) -> dict[str, Any]:
    """One op on file f: fill, punch, read, write, resize, seal or close it.

    On a file the setup sealed, the ops its seals refuse are drawn only now and then (an
    error ends the task, and what follows it would not run).
    """
    fd, size = f["fd"], f["size"]
    kind = draw(st.sampled_from(kinds))
    if f["disk"] and kind in ("fallocate", "punch_hole", "add_seals"):
        kind = draw(st.sampled_from(["read", "read", "write"]))  # no fallocate, no seals
    refused = {"write", "punch_hole"} if f["write_sealed"] else set()
    if {"shrink", "grow"} & set(f["seals"]):
        refused.add("ftruncate")
    if kind in refused and draw(st.integers(0, 7)):
        kind = "fallocate"
    off, length = draw(extent(size))
    if kind == "fallocate":
        flags = draw(st.sampled_from([[], [], ["keep_size"]]))
        return {"fallocate": {"fd": fd, "offset": off * PAGE, "length": length * PAGE,
                              "flags": flags}}
    if kind == "punch_hole":
        return {"fallocate": {"fd": fd, "offset": off * PAGE, "length": length * PAGE,
                              "flags": ["punch_hole", "keep_size"]}}
    if kind == "write":
        skew = draw(st.sampled_from([0, 0, 100]))
        return {"write": {"fd": fd, "offset": off * PAGE + skew, "length": length * PAGE - skew}}
    if kind == "read":
        if f["disk"] and draw(st.booleans()):
            return {"read": {"fd": fd}}  # the whole file: more than a memcg holds, often
        return {"read": {"fd": fd, "offset": off * PAGE, "length": length * PAGE}}
    if kind == "ftruncate":
        return {"ftruncate": {"fd": fd, "size": draw(st.integers(0, size * 2)) * PAGE}}
    if kind == "add_seals" and f["sealable"]:
        seals = draw(st.lists(st.sampled_from(SEALS), min_size=1, max_size=3, unique=True))
        return {"add_seals": {"fd": fd, "seals": seals}}
    if kind == "close" and draw(st.booleans()):
        return {"close": {"fd": fd}}
    return {"read": {"fd": fd}}


@st.composite
def files(draw: Any, mounts: list[str], most: int = 3) -> list[dict[str, Any]]:
    """The files the setup task creates: fd name, how it is created, size in pages."""
    out = []
    for i in range(draw(st.sampled_from([1, 1, 2, 2, 3][:2 * most]))):
        fd = f"f{i}"
        disk = draw(st.integers(0, 3)) == 0
        if disk:  # on the disk mount, uncached at start
            create = {"open": {"fd": fd, "path": f"/disk/file{i}", "mode": "rdwr"}}
            sealable = False
        elif mounts and draw(st.booleans()):
            create = {"open": {"fd": fd, "path": f"{draw(st.sampled_from(mounts))}/file{i}"}}
            sealable = False
        else:
            flags = draw(st.sampled_from([["allow_sealing"], ["allow_sealing"], [],
                                          ["noexec_seal"]]))
            create = {"memfd_create": {"fd": fd, "flags": flags}}
            sealable = bool(flags)
        seals: list[str] = []
        if sealable and draw(st.integers(0, 3)):
            seals = draw(st.lists(st.sampled_from(SEALS[:4]), min_size=1, max_size=3,
                                  unique=True))
        size = draw(st.integers(16, 1024) if disk else st.integers(1, 512))
        out.append({"fd": fd, "create": create, "size": size,
                    "sealable": sealable, "seals": seals, "disk": disk,
                    "write_sealed": bool({"write", "future_write"} & set(seals))})
    return out


@st.composite
def setup_ops(draw: Any, fs: list[dict[str, Any]], kernel: str = "6.18") -> list[dict[str, Any]]:
    """Create and size every file, seal some, then fill or write some ranges; on 6.18 fault
    some pages of some files in through a read-only map and page them out; then wait.

    Sealing comes before the fills (fallocate still works on a write-sealed file), so that a
    fill that fails (ENOSPC, EPERM) leaves the files created and sealed all the same.
    """
    ops: list[dict[str, Any]] = []
    for f in fs:
        ops.append(f["create"])
        ops.append({"ftruncate": {"fd": f["fd"], "size": f["size"] * PAGE}})
    for f in fs:
        if f["seals"]:
            ops.append({"add_seals": {"fd": f["fd"], "seals": f["seals"]}})
    for f in fs:
        for _ in range(draw(st.integers(0, 2))):
            a = draw(st.integers(0, f["size"] - 1))
            n = draw(st.integers(1, f["size"] - a))
            kinds = ["fallocate"] if f["write_sealed"] else ["fallocate", "fallocate", "write"]
            if f["disk"]:
                kinds = ["read", "read", "write"]
            kind = draw(st.sampled_from(kinds))
            ops.append({kind: {"fd": f["fd"], "offset": a * PAGE, "length": n * PAGE}})
    for f in fs:
        if kernel == "6.18" and draw(st.integers(0, 2)) == 0:
            # Fault some pages in through a read-only map and page them out: the written or
            # fallocated ones go to swap, the read-faulted holes are freed (holes again), so
            # the workers meet pages in swap as well as holes.
            name = f"setup.{f['fd']}"
            rng = draw(page_range(f["size"]))
            ops += [{"mmap": {"fd": f["fd"], "map": name, "prot": ["read"], "flags": ["shared"]}},
                    {"touch": {"map": name, "access": "read", "range": rng}},
                    {"madvise": {"map": name, "advice": "pageout"}},
                    {"munmap": {"map": name}}]
    ops.append({"sleep": draw(st.sampled_from(["50ms", "3s", "20s"]))})
    return ops


@st.composite
def mmap_op(draw: Any, name: str, f: dict[str, Any]) -> tuple[dict[str, Any], int, bool]:
    """An mmap of file f (its length may run past EOF: SIGBUS there): the op, its length in
    pages, and whether it is writable."""
    off, npages = draw(extent(f["size"]))
    flags = [draw(st.sampled_from(["shared", "shared", "private"]))]
    prot = draw(st.sampled_from([["read"], ["read"], ["read", "write"]]))
    if f["write_sealed"] and flags == ["shared"] and draw(st.integers(0, 7)):
        prot = ["read"]  # else EPERM
    flags += draw(st.lists(st.sampled_from(["populate", "locked", "noreserve"]), max_size=1))
    return {"mmap": {"fd": f["fd"], "map": name, "prot": prot, "flags": flags,
                     "offset": off * PAGE, "length": npages * PAGE}}, npages, "write" in prot


@st.composite
def access(draw: Any, writable: bool) -> str:
    """Read or write; a write to a read-only map (SIGSEGV, EINVAL) only now and then."""
    if writable or draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(["read", "write"]))
    return "read"


@st.composite
def map_op(draw: Any, name: str, npages: int, writable: bool, kernel: str,
           kinds: list[str] = MAP_OP_KINDS) -> dict[str, Any]:
    """One op on a map: touch (sequential, random or stride), mlock, madvise, munmap, ...

    MADV_POPULATE_* is left out on 3.15 (EINVAL there) but for a rare check of just that.
    """
    kind = draw(st.sampled_from(kinds))
    if kind in ("madvise", "pageout") and kernel != "6.18" and draw(st.integers(0, 7)):
        kind = "touch"
    rng = draw(st.one_of(st.none(), page_range(npages)))
    extra = {} if rng is None else {"range": rng}
    if kind == "touch":
        pattern = draw(st.sampled_from(["sequential", "sequential", "random", "stride"]))
        op: dict[str, Any] = {"map": name, "access": draw(access(writable)),
                              "pattern": pattern, **extra}
        if pattern == "stride":
            # Now and then about one touch per 16-page fault-around window.
            op["stride"] = kib(draw(st.one_of(st.integers(1, 600),
                                              st.sampled_from([8, 15, 16, 17, 32]))))
        if draw(st.integers(0, 3)) == 0:
            # A sparse touch: a few random or strided pages, or a read fault or two at the
            # start of the range, near pages written or faulted before.
            op["count"] = draw(st.integers(1, 3 if pattern == "sequential" else 40))
        return {"touch": op}
    if kind == "pageout":
        return {"madvise": {"map": name, "advice": "pageout", **extra}}
    if kind == "mlock":
        return {"mlock": {"map": name, **extra}}
    if kind == "munlock":
        return {"munlock": {"map": name, **extra}}
    if kind == "mlock2":
        return {"mlock2": {"map": name, "flags": draw(st.sampled_from([[], ["onfault"]]))}}
    if kind == "madvise":
        advice = {"read": "populate_read", "write": "populate_write"}[draw(access(writable))]
        roll = draw(st.integers(0, 7))
        if roll == 0:
            advice = "dontneed"
        elif roll <= 2 and (kernel == "6.18" or draw(st.integers(0, 7)) == 0):
            advice = "pageout"
        return {"madvise": {"map": name, "advice": advice, **extra}}
    if kind == "mprotect":
        return {"mprotect": {"map": name, "prot": draw(st.sampled_from([["read"],
                                                                        ["read", "write"]]))}}
    return {"munmap": {"map": name}}


@st.composite
def worker_ops(draw: Any, task: str, fs: list[dict[str, Any]], kernel: str,
               cycles: bool = False) -> list[dict[str, Any]]:
    """A worker's ops in random order, mostly on the one or two files it works with: maps of
    them touched again and again, and fills, punches and resizes of those files in between.
    A map is used only after this task created it. With `cycles`, nearly every op is part of
    a walk / change the file / walk again cycle."""
    focus = draw(st.lists(st.sampled_from(fs), min_size=1, max_size=2, unique_by=lambda f: f["fd"]))
    ops: list[dict[str, Any]] = []
    maps: dict[str, tuple[int, bool]] = {}  # name: pages, writable
    files_of: dict[str, dict[str, Any]] = {}
    kinds = ["mmap", "map", "map", "map", "again", "file", "file", "anon", "sleep", "adj",
             "tables"]
    if cycles:
        kinds = ["mmap", "map", "again", "again", "again", "again"]
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(kinds))
        if kind == "again" and files_of:
            # Walk a map, change its file underneath, walk it again.
            name = draw(st.sampled_from(sorted(files_of)))
            f = files_of[name]
            walk = ["touch", "touch", "madvise"]
            ops.append(draw(map_op(name, *maps[name], kernel, walk)))
            if kernel == "6.18" and draw(st.booleans()):
                # Send what the walk mapped to swap, so that the next walk swaps it in.
                ops.append(draw(map_op(name, *maps[name], kernel, ["pageout"])))
            ops.append(draw(file_op(f, CHANGE_KINDS)))
            ops.append(draw(map_op(name, *maps[name], kernel, walk)))
        elif kind in ("mmap", "map", "again") and not maps or kind == "mmap":
            name = f"{task}.m{len(maps)}"
            f = draw(st.sampled_from(focus))
            op, npages, writable = draw(mmap_op(name, f))
            ops.append(op)
            maps[name] = (npages, writable)
            files_of[name] = f
        elif kind in ("map", "again"):
            name = draw(st.sampled_from(sorted(maps)))
            op = draw(map_op(name, *maps[name], kernel))
            ops.append(op)
            if ("munmap" in op or op.get("madvise", {}).get("advice") == "dontneed") \
                    and draw(st.booleans()):
                # Allocate at once: the freed page tables are still charged (RCU).
                ops.append({"alloc_anon": {"size": kib(draw(st.integers(1, 64)))}})
        elif kind == "tables":
            # A sparse anonymous map: page tables of several 2 MiB regions, a few pages each,
            # then zapped (whole regions lose their PTE tables) or unmapped, and an allocation
            # while they wait for their grace period, or after.
            name = f"{task}.t{len(maps)}"
            npages = draw(st.integers(600, 3000))
            ops.append({"alloc_anon": {"size": kib(npages), "touched": False, "map": name}})
            ops.append({"touch": {"map": name, "access": "write", "pattern": "stride",
                                  "stride": kib(draw(st.sampled_from([256, 512, 1024])))}})
            ops.append(draw(st.sampled_from([{"munmap": {"map": name}},
                                             {"madvise": {"map": name, "advice": "dontneed"}}])))
            if draw(st.booleans()):
                ops.append({"sleep": draw(st.sampled_from(["1ms", "30ms"]))})
            ops.append({"alloc_anon": {"size": kib(draw(st.integers(1, 128)))}})
            maps[name] = (npages, True)
        elif kind == "file":
            f = draw(st.sampled_from(focus if draw(st.integers(0, 3)) else fs))
            ops.append(draw(file_op(f)))
        elif kind == "anon":
            name = f"{task}.a{len(maps)}"
            npages = draw(st.integers(1, 256))
            ops.append({"alloc_anon": {"size": kib(npages), "touched": draw(st.booleans()),
                                       "map": name}})
            maps[name] = (npages, True)
        elif kind == "sleep":
            ops.append({"sleep": draw(st.sampled_from(["1ms", "10ms", "2s"]))})
        else:
            ops.append({"oom_score_adj": draw(st.sampled_from([0, 500, 1000]))})
    return ops


@st.composite
def machines(draw: Any) -> dict[str, Any]:
    """A machine of a few MiB: one node (1.5-6 MiB), or 2-4 nodes of 0.75-2.5 MiB."""
    n = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    lo, hi = (384, 1536) if n == 1 else (192, 640)
    nodes = [{"memory": kib(draw(st.integers(lo, hi)))} for _ in range(n)]
    # A short quantum makes walks of a few hundred pages take many slices, so that
    # concurrent tasks interleave inside them.
    quantum = draw(st.sampled_from(["1ms", "100us", "20us"]))
    swap: Any = kib(draw(st.sampled_from([0, 16, 128, 1024, 1024])))
    if swap != kib(0) and draw(st.booleans()):  # a disk device: the same pages, slower
        swap = {"size": swap, "kind": "disk"}
    return {"page_size": "4KiB", "nodes": nodes, "swap": swap, "costs": {"quantum": quantum}}


@st.composite
def sysctls(draw: Any) -> dict[str, Any]:
    """Overcommit mode 0/1/2 with a small ratio, small reserves, sometimes a chosen min_free."""
    out: dict[str, Any] = {
        "overcommit_memory": draw(st.sampled_from([0, 1, 2])),
        "overcommit_ratio": draw(st.sampled_from([5, 30, 50, 50, 80, 100])),
        "admin_reserve_kbytes": draw(st.sampled_from([0, 64, 256])),
        "user_reserve_kbytes": draw(st.sampled_from([0, 128, 1024])),
    }
    if draw(st.booleans()):
        out["min_free_kbytes"] = draw(st.sampled_from([128, 256, 512]))
    return out


def node_sets(nnodes: int) -> st.SearchStrategy[list[int]]:
    """A non-empty set of the machine's nodes, as a sorted list."""
    return st.sets(st.integers(0, nnodes - 1), min_size=1, max_size=nnodes).map(sorted)


def effective_mems(cgroups: dict[str, Any], path: str, nnodes: int) -> list[int]:
    """A cgroup's effective cpuset mems: each ancestor's cpuset.mems within its parent's, the
    parent's where that leaves none (cgroup v2)."""
    eff = list(range(nnodes))
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts)):
        mems = cgroups.get("/" + "/".join(parts[:i + 1]), {}).get("cpuset.mems")
        if mems is not None:
            eff = [n for n in eff if n in mems] or eff
    return eff


@st.composite
def mempolicies(draw: Any, nnodes: int, mems: list[int]) -> dict[str, Any] | None:
    """A task's NUMA policy (mostly none), its nodes meeting the cpuset's `mems`."""
    mode = draw(st.sampled_from([None, None, None, "default", "local", "preferred", "bind",
                                 "bind", "interleave", "interleave"]))
    if mode is None or mode in ("default", "local"):
        return None if mode is None else {"mode": mode}
    if mode == "preferred":
        return {"mode": mode, "nodes": [draw(st.sampled_from(mems))]}
    nodes = draw(node_sets(nnodes))
    if not set(nodes) & set(mems):
        nodes = sorted({*nodes, draw(st.sampled_from(mems))})
    return {"mode": mode, "nodes": nodes}


@st.composite
def scenario_dicts(draw: Any, cycles: bool = False) -> dict[str, Any]:
    """The YAML-equivalent dict of a small random scenario.

    With `cycles`: one file and one or two workers walking its maps, changing it, walking again.
    """
    machine = draw(machines())
    nnodes = len(machine["nodes"])
    mounts = [f"/mnt/t{i}" for i in range(draw(st.integers(0, 2)))]
    fs = draw(files(mounts, most=1 if cycles else 3))
    disk_files = {f["create"]["open"]["path"].rsplit("/", 1)[1]: kib(f["size"])
                  for f in fs if f["disk"]}
    cgroup_paths = draw(st.sampled_from(CGROUP_TREES))
    cgroup_choices = ["/", *cgroup_paths]
    kernel = draw(st.sampled_from(["6.18", "3.15"]))
    tasks: list[dict[str, Any]] = []
    setup_cg = draw(st.sampled_from(cgroup_choices))
    tasks.append({"name": "setup", "cgroup": setup_cg, "footprint": draw(footprints()),
                  "node": draw(st.integers(0, nnodes - 1)), "ops": draw(setup_ops(fs, kernel))})
    for i in range(draw(st.integers(1, 2 if cycles else 4))):
        name = f"w{i}"
        start = draw(st.sampled_from(["1ms", "1ms", "7ms", "30ms", "2s", {"after": "setup"}]))
        task: dict[str, Any] = {
            "name": name, "cgroup": draw(st.sampled_from(cgroup_choices)), "start": start,
            "oom_score_adj": draw(st.sampled_from([-1000, 0, 0, 0, 300, 1000])),
            "footprint": draw(footprints()), "node": draw(st.integers(0, nnodes - 1)),
            "rlimits": {"memlock": draw(st.sampled_from(["8MiB", "8MiB", "64KiB", "max"]))},
            "ops": draw(worker_ops(name, fs, kernel, cycles)),
        }
        if draw(st.integers(0, 3)) == 0:
            task["capabilities"] = ["ipc_lock"]
        tasks.append(task)
    ram = sum(int(n["memory"][:-3]) * 1024 // PAGE for n in machine["nodes"])
    cgroups: dict[str, Any] = {}
    for path in cgroup_paths:
        inside = sum(footprint_pages(t["footprint"]) for t in tasks
                     if t["cgroup"] == path or t["cgroup"].startswith(path + "/"))
        spec: dict[str, Any] = {}
        if draw(st.integers(0, 4)):
            spec["memory.max"] = kib(min(ram, inside + draw(st.integers(4, 300))))
        if draw(st.integers(0, 3)) == 0:
            spec["memory.oom.group"] = True
        disable = draw(st.integers(0, 11))
        if disable < 2:  # 1 written as 0: a child of a disabled memcg inherits unless it is
            spec["memory.oom_kill_disable"] = disable == 0
        if draw(st.integers(0, 2)) == 0:
            spec["memory.swap.max"] = kib(draw(st.sampled_from([0, 4, 32, 200])))
        if draw(st.integers(0, 2)) == 0:  # throttled a little past it, or 2 s a batch
            spec["memory.high"] = kib(inside + draw(st.integers(0, 200)))
        if nnodes > 1 and draw(st.integers(0, 3)) == 0:
            spec["cpuset.mems"] = draw(node_sets(nnodes))
        if "memory.max" in spec and draw(st.integers(0, 3)) == 0:  # v1 memory+swap
            spec["memory.memsw.limit_in_bytes"] = kib(min(ram, inside + draw(st.integers(4, 600))))
        if draw(st.integers(0, 4)) == 0:  # v1 per-memcg swappiness (0: file pages only)
            spec["memory.swappiness"] = draw(st.sampled_from([0, 1, 60, 200]))
        cgroups[path] = spec
    if nnodes > 1:
        for task in tasks:
            policy = draw(mempolicies(nnodes, effective_mems(cgroups, task["cgroup"], nnodes)))
            if policy is not None:
                task["mempolicy"] = policy
    return {
        "name": "differential",
        "seed": draw(st.integers(0, 2**16)),
        "kernel": kernel,
        "duration": "30s",
        "machine": machine,
        "sysctl": draw(sysctls()),
        "mounts": [{"path": p, "size": kib(draw(st.sampled_from([0, 0, 64, 256, 1024]))),
                    "noswap": draw(st.sampled_from([False, False, True]))} for p in mounts]
                  + ([{"path": "/disk", "type": "disk", "files": disk_files}] if disk_files else []),
        "cgroups": cgroups,
        "what_if": {"zero_page_sealed_holes": draw(st.booleans()),
                    # sealing against writes fills the file (simulator/mm/memfd_seal_charge.py)
                    "charge_at_seal": draw(st.integers(0, 3)) == 0},
        "tasks": tasks,
    }


@st.composite
def interleaved_dicts(draw: Any, quantum: str | None = None) -> dict[str, Any]:
    """Walkers in unrelated and related memcgs whose walks overlap in time (the slicing rule
    of simulator/engine/interact.py): a roomy machine, small leaf memcgs (some under a parent
    whose max covers them, some under one that can bind, some tasks sharing a leaf or a
    file), anonymous allocations and touches with short sleeps, so that a walk either passes
    or stops at each other task's events. `quantum`: the slices' least length (drawn if
    None)."""
    nnodes = draw(st.integers(1, 2))
    node_pages = draw(st.sampled_from([1536, 4096, 8192]))
    machine = {"page_size": "4KiB", "nodes": [{"memory": kib(node_pages)}] * nnodes,
               "swap": "0KiB",  # the rule passes nothing on a machine with swap
               "costs": {"quantum": quantum or draw(st.sampled_from(["100us", "20us", "5us"]))}}
    leaves = ["/p/a", "/p/b", "/q/c", "/q/d", "/e"]
    cgroups: dict[str, Any] = {}
    for leaf in leaves:
        spec: dict[str, Any] = {"memory.max": kib(draw(st.integers(64, 900)))}
        if draw(st.integers(0, 5)) == 0:
            spec["memory.high"] = kib(draw(st.integers(48, 700)))
        if draw(st.integers(0, 3)) == 0:
            spec["memory.oom.group"] = True
        cgroups[leaf] = spec
    cgroups["/p"] = {"memory.max": kib(4000)}  # covers /p/a and /p/b: never binds
    cgroups["/q"] = {"memory.max": kib(draw(st.integers(200, 1200)))}  # may bind
    tasks: list[dict[str, Any]] = []
    shared = "/dev/shm/s"
    for i in range(draw(st.integers(2, 6))):
        name = f"w{i}"
        ops: list[dict[str, Any]] = []
        for j in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["anon", "anon", "anon", "touch", "file", "sleep",
                                         "memfd", "shared"]))
            if kind in ("memfd", "shared"):
                # Its own memfd, or `mf`, held by every task naming it (w0 creates it first).
                fd = "mf" if kind == "shared" else f"{name}.mf{j}"
                pages = draw(st.integers(8, 600))
                if kind == "memfd":
                    ops.append({"memfd_create": {"fd": fd}})
                    ops.append({"ftruncate": {"fd": fd, "size": kib(pages)}})
                    ops.append({"write": {"fd": fd, "length": kib(draw(st.integers(1, pages)))}})
                m = f"{name}.s{j}"
                ops.append({"mmap": {"fd": fd, "map": m, "prot": ["read", "write"],
                                     "flags": ["shared"]}})
                ops.append({"touch": {"map": m, "access": draw(st.sampled_from(["read",
                                                                                "write"]))}})
            elif kind == "anon":
                ops.append({"alloc_anon": {"size": kib(draw(st.integers(16, 1200)))}})
            elif kind == "touch":
                m = f"{name}.m{j}"
                ops.append({"alloc_anon": {"size": kib(draw(st.integers(16, 600))),
                                           "touched": False, "map": m}})
                ops.append({"touch": {"map": m, "access": "write",
                                      "pattern": draw(st.sampled_from(["sequential",
                                                                       "random"]))}})
                if draw(st.booleans()):
                    ops.append({"munmap": {"map": m}})
            elif kind == "file":
                fd = f"{name}.f{j}"
                ops.append({"open": {"fd": fd, "path": shared}})
                ops.append({"write": {"fd": fd, "length": kib(draw(st.integers(4, 200)))}})
                ops.append({"close": {"fd": fd}})
            else:
                ops.append({"sleep": draw(st.sampled_from(["10us", "100us", "1ms"]))})
        tasks.append({"name": name, "cgroup": draw(st.sampled_from(leaves + ["/"])),
                      "node": draw(st.integers(0, nnodes - 1)),
                      "start": draw(st.sampled_from(["0ms", "50us", "200us", "1ms", "3ms"])),
                      "ops": ops})
    if any(o.get("mmap", {}).get("fd") == "mf" for t in tasks for o in t["ops"]):
        pages = draw(st.integers(8, 600))
        tasks[0]["ops"][:0] = [
            {"memfd_create": {"fd": "mf"}},
            {"ftruncate": {"fd": "mf", "size": kib(pages)}},
            {"write": {"fd": "mf", "length": kib(draw(st.integers(1, pages)))}}]
    return {"name": "interleaved", "seed": draw(st.integers(0, 2**16)), "duration": "30s",
            "machine": machine, "cgroups": cgroups, "tasks": tasks,
            "mounts": [{"path": "/dev/shm", "size": kib(draw(st.sampled_from([0, 300])))}]}


def scenarios() -> st.SearchStrategy[Scenario]:
    """Small random scenarios, validated as a scenario file is (models, then cross-checks)."""

    def build(d: dict[str, Any]) -> Scenario:
        sc = Scenario.model_validate(d)
        validify(sc)
        return sc

    return st.one_of(scenario_dicts(), scenario_dicts(cycles=True),
                     interleaved_dicts()).map(build)
