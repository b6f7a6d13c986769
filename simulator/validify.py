"""Cross-field checks of a scenario: every reference exists, every range fits.

After the shape of each key is checked by the pydantic models, this walks the scenario once
(as Ciw's `validify_dictionary` does) and raises ScenarioError with the key path of the first
problem: a task in an unknown cgroup, an fd or map used but never created, a file opened on no
mount, a range past the end of its map, a start-after cycle. `scenario_warnings` lists the
settings that are accepted but change nothing (features not modelled yet, ignored keys).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .scenario_errors import ScenarioError
from .scenario_model import RESERVED_EXPECT_KEYS, Bound, StartAfter
from .scenario_ops import op_args, op_name
from .units import SizeText, UnitError, parse_bytes, parse_seconds
from .userspace.config import check_userspace_oom

if TYPE_CHECKING:
    from .scenario_model import Scenario

FD_OPS = ("ftruncate", "write", "read", "fallocate", "add_seals", "mmap", "close")
MEMCG_STATS = ("usage", "anon", "shmem", "file", "kernel", "pagetables", "file_mapped", "swap")
# counts since the start, in pages
MEMCG_RECLAIM = ("pgscan", "pgsteal", "workingset_refault", "workingset_activate",
                 "workingset_restore")
MEMCG_EXPECT_KEYS = (*MEMCG_STATS, *(f"peak_{s}" for s in MEMCG_STATS), "peak_memsw", "memsw",
                     *MEMCG_RECLAIM, "events", "pressure")
MEMCG_EVENTS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")
PRESSURE_TOTALS = ("some_total", "full_total")  # durations
PRESSURE_AVGS = tuple(f"{k}_avg{w}" for k in ("some", "full") for w in (10, 60, 300))  # percent
MAP_OPS = ("munmap", "touch", "mlock", "munlock", "mlock2", "madvise", "mprotect")


def _bytes(v: Any, whole: int | None = None) -> int:
    return parse_bytes(v, whole)


def mount_of(path: str, mounts: Iterable[str]) -> str | None:
    """The mount a file path is on: the longest mount path it is below (None: on none)."""
    below = [mp for mp in mounts if path.startswith(mp.rstrip("/") + "/")]
    return max(below, key=len) if below else None


def machine_bytes(sc: Scenario) -> int:
    """RAM of the machine in bytes."""
    return sum(_bytes(n.memory) for n in sc.machine.nodes)


@cache
def _keys(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the key a file writes (its alias, if any)."""
    return {name: f.alias or name for name, f in model.model_fields.items()}


# Values that hold no size: skipped without a call (a 10,000-task file has 480,000 values).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def percentages(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The key paths of every size written as a percentage, in file order."""
    if isinstance(node, SizeText):
        if node.pct is not None:
            yield path
    elif isinstance(node, BaseModel):
        keys = _keys(type(node))
        for name, v in node.__dict__.items():
            if type(v) not in _PLAIN:
                yield from percentages(v, (*path, keys[name]))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            if type(v) not in _PLAIN:
                yield from percentages(v, (*path, i))
    elif isinstance(node, dict):
        for k, v in node.items():
            if type(v) not in _PLAIN:
                yield from percentages(v, (*path, k))


# Op sizes that may be a percentage of the file's size when the op runs.
PCT_OF_FILE = {("write", "offset"), ("write", "length"), ("read", "offset"), ("read", "length"),
               ("fallocate", "offset"), ("fallocate", "length"), ("mmap", "length")}


def allowed_percentages(sc: Scenario) -> int:
    """How many sizes are written as percentages where `percentage_allowed` allows them,
    looked for where one may be: the cgroups, the mounts and the ops' arguments and their
    lists (a count short of the models' sends `validify` through the whole walk). Only the
    percentages found get a key path to ask about, not every value."""
    n = sum(1 for w in percentages(sc.cgroups, ("cgroups",)) if percentage_allowed(w))
    n += sum(1 for w in percentages(sc.mounts, ("mounts",)) if percentage_allowed(w))
    for ti, t in enumerate(sc.tasks):
        for oi, op in enumerate(t.ops):
            args = op_args(op)
            if not isinstance(args, BaseModel):
                continue
            keys = _keys(type(args))
            for k, v in args.__dict__.items():
                if type(v) in _PLAIN:
                    continue
                items = enumerate(v) if isinstance(v, (list, tuple)) else ((None, v),)
                for i, x in items:
                    if isinstance(x, SizeText) and x.pct is not None:
                        where = ("tasks", ti, "ops", oi, op_name(op), keys[k])
                        n += percentage_allowed(where if i is None else (*where, i))
    return n


def percentage_allowed(path: tuple[Any, ...]) -> bool:
    """A percentage needs a whole: RAM for cgroup limits and mount sizes, the map for ranges,
    the file's size (when the op runs) for the offsets and lengths of write, read, fallocate
    and mmap."""
    if path[0] in ("cgroups", "mounts") or "range" in path:
        return True
    return len(path) >= 6 and path[2] == "ops" and (path[4], path[5]) in PCT_OF_FILE


def _pct(v: Any) -> bool:
    return isinstance(v, SizeText) and v.pct is not None


def start_cycle(sc: Scenario) -> tuple[int, list[str]] | None:
    """The first task (index) whose `start: {after: ...}` chain comes back to itself, and the
    chain; None if there is no cycle (every chain ends at a task that starts by time)."""
    after = {t.name: t.start.after for t in sc.tasks if isinstance(t.start, StartAfter)}
    index = {t.name: i for i, t in enumerate(sc.tasks)}
    for t in sc.tasks:
        chain, name = [t.name], after.get(t.name)
        while name is not None and name not in chain:
            chain.append(name)
            name = after.get(name)
        if name == t.name:
            return index[t.name], [*chain, t.name]
    return None


def check_counter_expect(kind: str, want: Any, where: tuple[Any, ...]) -> None:
    """`events: {high: 17}` or `{high: {min: 1}}` (counts); `pressure: {some_total: {min: 1s},
    some_avg10: {max: 5}}` (totals as durations, averages as percentages): names and values."""
    if not isinstance(want, dict):
        raise ScenarioError(f"expected a mapping of {kind} to values", where)
    names = MEMCG_EVENTS if kind == "events" else (*PRESSURE_TOTALS, *PRESSURE_AVGS)
    for name, v in want.items():
        if name not in names:
            raise ScenarioError(f"expected one of {', '.join(names)}", (*where, name))
        ends = [v.min, v.max] if isinstance(v, Bound) else [v]
        for end in ends:
            if end is None:
                continue
            try:
                expect_number(kind, name, end)
            except (UnitError, ValueError) as e:
                raise ScenarioError(str(e), (*where, name)) from None


SIZE_BOUNDS = ({"min", "max"}, {"min"}, {"max"}, {"close", "err"})


def check_size_bounds(want: dict[str, Any], where: tuple[Any, ...]) -> None:
    """A size expected within `{min, max}` (either end may be left out), or as the kernel's
    selftests compare (`values_close`): `{close: SIZE, err: PERCENT}`, |got - close| at most
    err percent of (got + close)."""
    if set(want) not in SIZE_BOUNDS:
        raise ScenarioError("expected a size, {min, max} or {close, err}", where)
    for k, v in want.items():
        try:
            if k == "err":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ValueError(f"expected a percentage, got {v!r}")
            else:
                parse_bytes(str(v))
        except (UnitError, ValueError) as e:
            raise ScenarioError(str(e), (*where, k)) from None


def expect_number(kind: str, name: str, v: Any) -> float:
    """An expected events count, pressure total (in microseconds) or average (percent)."""
    if kind == "events":
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"expected a count, got {v!r}")
        return v
    if name in PRESSURE_TOTALS:
        return parse_seconds(v) * 1e6
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
        raise ValueError(f"expected a percentage (0-100), got {v!r}")
    return float(v)


def scenario_warnings(sc: Scenario) -> list[tuple[str, tuple[Any, ...]]]:
    """Settings that are accepted but change nothing (not modelled, or ignored): a message and
    the key path of each, in file order."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    ram = machine_bytes(sc)
    for path, cg in sc.cgroups.items():
        where = ("cgroups", path)
        if _bytes(cg.memory_min, ram):
            if cg.memory_max != "max" and _bytes(cg.memory_min, ram) > _bytes(cg.memory_max, ram):
                out.append((f"memory.min {cg.memory_min} is above memory.max {cg.memory_max}: the "
                            "kernel protects at most the usage, which memory.max caps",
                            (*where, "memory.min")))
    for ti, t in enumerate(sc.tasks):
        for oi, op in enumerate(t.ops):
            if op_name(op) == "touch":
                args = op_args(op)
                if args.stride is not None and args.pattern != "stride":
                    out.append((f"stride is ignored: pattern is {args.pattern} (use pattern: "
                                "stride)", ("tasks", ti, "ops", oi, "touch", "stride")))
    return out


def validify(sc: Scenario, any_percentages: bool = True, percentages_read: int | None = None
             ) -> None:
    """Raise ScenarioError at the first reference or range that cannot work.

    `any_percentages=False` (the loader's: no `%` anywhere in the file's text) skips the walk
    that finds the sizes written as percentages, a sixth of the time on a 10,000-task file;
    so does `percentages_read` (how many percentages the models read, when every size was
    read from text) when the places a percentage is allowed hold them all."""
    if percentages_read is not None and allowed_percentages(sc) == percentages_read:
        any_percentages = False
    for where in percentages(sc) if any_percentages else ():
        if not percentage_allowed(where):
            raise ScenarioError("a percentage is not allowed here: nothing to take it of", where)
    page = _bytes(sc.machine.page_size)
    for i, n in enumerate(sc.machine.nodes):
        if _bytes(n.memory) < 64 * page:
            raise ScenarioError("a node needs at least 64 pages of memory", ("machine", "nodes", i, "memory"))
        if n.reserved is not None and -(-_bytes(n.reserved) // page) >= -(-_bytes(n.memory) // page):
            raise ScenarioError("reserved is not smaller than memory", ("machine", "nodes", i, "reserved"))
        if n.distance is not None and len(n.distance) != len(sc.machine.nodes):
            raise ScenarioError(f"expected {len(sc.machine.nodes)} distances, one per node",
                                ("machine", "nodes", i, "distance"))
    nr_nodes = len(sc.machine.nodes)
    for path, cg in sc.cgroups.items():
        if not path.startswith("/") or path == "/" or path.endswith("/") or "//" in path:
            raise ScenarioError("expected a cgroup path such as /app or /app/worker (not the root)",
                                ("cgroups", path))
        check_nodes(cg.cpuset_mems, nr_nodes, ("cgroups", path, "cpuset.mems"))
        # memory.max above the machine's memory is accepted, as the kernel does: no limit in
        # practice.
    mount_paths = Counter(m.path for m in sc.mounts)
    for i, mnt in enumerate(sc.mounts):
        if not mnt.path.startswith("/"):
            raise ScenarioError("expected an absolute path", ("mounts", i, "path"))
        if mount_paths[mnt.path] > 1:
            raise ScenarioError("mounted twice", ("mounts", i, "path"))
        if mnt.files and mnt.type != "disk":
            raise ScenarioError("only a disk mount (type: disk) has files", ("mounts", i, "files"))
        for fname in mnt.files:
            if not fname or "/" in fname:
                raise ScenarioError("expected a file name (no /)", ("mounts", i, "files", fname))
    disk_files = {f"{mnt.path.rstrip('/')}/{n}": _bytes(v)
                  for mnt in sc.mounts for n, v in mnt.files.items()}

    names = Counter(t.name for t in sc.tasks)
    fd_sizes: dict[str, int] = {}
    unknown_fds: set[str] = set()
    created_fds: set[str] = set()
    created_maps: dict[str, tuple[str | None, int | None]] = {}
    for ti, t in enumerate(sc.tasks):
        if names[t.name] > 1:
            raise ScenarioError("two tasks have this name", ("tasks", ti, "name"))
        if t.name in RESERVED_EXPECT_KEYS:
            raise ScenarioError(f"{t.name!r} is a reserved name", ("tasks", ti, "name"))
        if t.cgroup != "/" and t.cgroup not in sc.cgroups:
            raise ScenarioError(f"no such cgroup {t.cgroup!r}; declared: "
                                f"{', '.join(sc.cgroups) or 'none'}", ("tasks", ti, "cgroup"))
        if isinstance(t.start, StartAfter):
            if t.start.after not in names:
                raise ScenarioError(f"no task named {t.start.after!r}", ("tasks", ti, "start", "after"))
            if t.start.after == t.name:
                raise ScenarioError("a task cannot start after itself", ("tasks", ti, "start", "after"))
        if t.node >= len(sc.machine.nodes):
            raise ScenarioError(f"no node {t.node}; the machine has {len(sc.machine.nodes)}",
                                ("tasks", ti, "node"))
        check_mempolicy(sc, ti)
        for oi, op in enumerate(t.ops):
            name, args = op_name(op), op_args(op)
            where = ("tasks", ti, "ops", oi, name)
            if name in ("memfd_create", "open", "shmget"):
                created_fds.add(args.fd)
            if name == "shmget":
                fd_sizes[args.fd] = _bytes(args.size)
            if name == "memory_reclaim" and args.cgroup != "/" and args.cgroup not in sc.cgroups:
                raise ScenarioError(f"no such cgroup {args.cgroup!r}", (*where, "cgroup"))
            if name == "open" and mount_of(args.path, mount_paths) is None:
                raise ScenarioError(f"{args.path!r} is on no mount; mounts: "
                                    f"{', '.join(mount_paths) or 'none'}", (*where, "path"))
            if name == "open" and args.path in disk_files:
                fd_sizes[args.fd] = max(fd_sizes.get(args.fd, 0), disk_files[args.path])
            if name == "ftruncate":
                fd_sizes[args.fd] = max(fd_sizes.get(args.fd, 0), _bytes(args.size))
            if name in ("write", "fallocate"):
                if _pct(args.offset) or _pct(args.length):
                    unknown_fds.add(args.fd)  # a share of a size known only when it runs
                else:
                    end = _bytes(args.offset) + _bytes(args.length)
                    fd_sizes[args.fd] = max(fd_sizes.get(args.fd, 0), end)
            if name == "mmap":
                length = None if args.length is None or _pct(args.length) else _bytes(args.length)
                # A share of the file: its length is known only when the op runs.
                created_maps[args.map] = (None if _pct(args.length) else args.fd, length)
            if name == "alloc_anon":
                created_maps[args.map or f"{t.name}.anon{oi}"] = (None, _bytes(args.size))
    cycle = start_cycle(sc)
    if cycle is not None:
        raise ScenarioError(f"start-after cycle: {' after '.join(cycle[1])}; no task of it could "
                            "ever start", ("tasks", cycle[0], "start", "after"))
    for ti, t in enumerate(sc.tasks):
        for oi, op in enumerate(t.ops):
            name, args = op_name(op), op_args(op)
            where = ("tasks", ti, "ops", oi, name)
            if name in FD_OPS and args.fd not in created_fds:
                raise ScenarioError(f"no fd {args.fd!r} is created by any memfd_create or open op",
                                    (*where, "fd"))
            if name in MAP_OPS:
                if args.map not in created_maps:
                    raise ScenarioError(f"no map {args.map!r} is created by any mmap op",
                                        (*where, "map"))
                rng = getattr(args, "range", None)
                fd, length = created_maps[args.map]
                if length is None and fd is not None and fd not in unknown_fds:
                    length = fd_sizes.get(fd)
                if rng is not None:
                    check_range(rng, length, page, (*where, "range"))
                if name == "touch" and args.pattern == "stride" and args.stride is None:
                    raise ScenarioError("pattern stride needs a stride (e.g. 8KiB)", (*where, "stride"))
    for key, exp in sc.expect.items():
        if key == "nodes":
            check_node_expect(exp, nr_nodes)
            continue
        if key == "memcg":
            if not isinstance(exp, dict):
                raise ScenarioError("expected a mapping of cgroup path to counters", ("expect", key))
            for cg_path, stats in exp.items():
                if cg_path != "/" and cg_path not in sc.cgroups:
                    raise ScenarioError(f"no such cgroup {cg_path!r}", ("expect", key, cg_path))
                for stat in stats:
                    if stat not in MEMCG_EXPECT_KEYS:
                        raise ScenarioError(f"expected one of {', '.join(MEMCG_EXPECT_KEYS)}",
                                            ("expect", key, cg_path, stat))
                    if stat in ("events", "pressure"):
                        check_counter_expect(stat, stats[stat], ("expect", key, cg_path, stat))
                    elif isinstance(want := stats[stat], dict):
                        check_size_bounds(want, ("expect", key, cg_path, stat))
            continue
        if key not in names:
            raise ScenarioError(f"no task named {key!r}", ("expect", key))
        if isinstance(exp, dict):
            raise ScenarioError("expected an outcome or {outcome, errno, op, page, reason}",
                                ("expect", key))
    check_userspace_oom(sc)


def check_nodes(nodes: list[int] | None, nr_nodes: int, where: tuple[Any, ...]) -> None:
    """A node list names nodes of the machine, at least one."""
    if nodes is None:
        return
    if not nodes:
        raise ScenarioError("expected at least one node", where)
    for k, n in enumerate(nodes):
        if not 0 <= n < nr_nodes:
            raise ScenarioError(f"no node {n}; the machine has {nr_nodes} (0-{nr_nodes - 1})",
                                (*where, k))


def task_mems(sc: Scenario, cgroup: str) -> tuple[int, ...]:
    """The cpuset's effective mems of a cgroup (as `cpuset_effective_mems`), for the checks."""
    eff = tuple(range(len(sc.machine.nodes)))
    parts = [p for p in cgroup.split("/") if p]
    for i in range(len(parts)):
        spec = sc.cgroups.get("/" + "/".join(parts[:i + 1]))
        mems = None if spec is None else spec.cpuset_mems
        own = eff if mems is None else tuple(n for n in eff if n in mems)
        eff = own or eff
    return eff


def check_mempolicy(sc: Scenario, ti: int) -> None:
    """A policy's nodes: required for preferred, bind and interleave (one for preferred),
    none for default and local, all on the machine, and some within the task's cpuset mems
    (set_mempolicy(2) refuses a policy left with no node: EINVAL)."""
    t = sc.tasks[ti]
    mp = t.mempolicy
    if mp is None:
        return
    where = ("tasks", ti, "mempolicy")
    if mp.mode in ("default", "local"):
        if mp.nodes:
            raise ScenarioError(f"mode {mp.mode} takes no nodes", (*where, "nodes"))
        return
    if mp.nodes is None:
        raise ScenarioError(f"mode {mp.mode} needs nodes (e.g. nodes: [0])", where)
    check_nodes(mp.nodes, len(sc.machine.nodes), (*where, "nodes"))
    if mp.mode == "preferred" and len(set(mp.nodes)) != 1:
        raise ScenarioError("mode preferred takes one node", (*where, "nodes"))
    mems = task_mems(sc, t.cgroup)
    if not any(n in mems for n in mp.nodes):
        raise ScenarioError(f"no node of the policy is in the cgroup's cpuset.mems "
                            f"({','.join(map(str, mems))}): set_mempolicy fails with EINVAL",
                            (*where, "nodes"))


NODE_EXPECT_KEYS = ("free", "anon", "shmem", "peak_free", "peak_anon", "peak_shmem")


def check_node_expect(exp: Any, nr_nodes: int) -> None:
    """`expect: {nodes: {NID: {shmem: 2MiB, ...}}}`: nodes of the machine, known counters."""
    if not isinstance(exp, dict):
        raise ScenarioError("expected a mapping of node id to counters", ("expect", "nodes"))
    for nid, stats in exp.items():
        if not str(nid).isdigit() or int(nid) >= nr_nodes:
            raise ScenarioError(f"no node {nid}; the machine has {nr_nodes}", ("expect", "nodes", nid))
        for stat in stats:
            if stat not in NODE_EXPECT_KEYS:
                raise ScenarioError(f"expected one of {', '.join(NODE_EXPECT_KEYS)}",
                                    ("expect", "nodes", nid, stat))


def check_range(rng: list[Any], length: int | None, page: int, where: tuple[Any, ...]) -> None:
    """A range must be ordered and lie inside its map (when the map's length is known)."""
    whole = length if length is not None else None
    for k, v in enumerate(rng):
        if isinstance(v, str) and v.strip().endswith("%"):
            if parse_bytes(v, 100) > 100:
                raise ScenarioError(f"a percentage above 100% ({v})", (*where, k))
            if whole is None:
                continue
    if whole is None:
        if any(isinstance(v, str) and v.strip().endswith("%") for v in rng):
            return
        start, end = _bytes(rng[0]), _bytes(rng[1])
    else:
        start, end = _bytes(rng[0], whole), _bytes(rng[1], whole)
    if end <= start:
        raise ScenarioError(f"expected START < END, got [{rng[0]}, {rng[1]}]", where)
    if length is not None and end > length:
        raise ScenarioError(
            f"range end {rng[1]} is past the end of the map ({length // 1024} KiB)", (*where, 1))
