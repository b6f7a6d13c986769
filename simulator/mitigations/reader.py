"""Reader-side policies: what the program that receives a sealed memfd can do before parsing.

Each rewrites the shared mappings of write-sealed files (rewrite.shared_mmaps) of the readers,
or of the `@task` named. mlock (`do_mlock`), MAP_POPULATE (`mm_populate`) and
MADV_POPULATE_READ (`madvise_populate`) fault the holes in through GUP (`faultin_page`) as
the parse would, so a failure comes at a known call; read(2) (`shmem_file_read_iter`) copies
holes from ZERO_PAGE and allocates nothing but the buffer it copies into.
"""

from __future__ import annotations

from typing import Any

from ..scenario_errors import ScenarioError
from ..scenario_model import Scenario
from ..units import parse_bytes
from .registry import Param, policy
from .rewrite import (
    Data,
    dump,
    load,
    map_length,
    op_of,
    reader_tasks,
    rewrite_ops,
    sealed_fds,
    sealer_tasks,
    shared_mmaps,
)

READERS = "readers (tasks that map a write-sealed file shared)"


def _after_mmaps(sc: Scenario, target: str | None, name: str, extra: Any,
                 flags: list[str] | None = None, caps: list[str] | None = None) -> Scenario:
    """Insert `extra(mmap_args)` (ops) after each targeted mmap; optionally add mmap flags and
    capabilities to the task."""
    data = dump(sc)
    for task in reader_tasks(data, target, name):
        idx = {i for i, _ in shared_mmaps(data, task)}

        def at(i: int, raw: Any, idx: set[int] = idx) -> list[Any] | None:
            if i not in idx:
                return None
            a = dict(op_of(raw)[1])
            if flags:
                a["flags"] = sorted(set(a["flags"]) | set(flags))
            return [{"mmap": a}, *extra(a)]

        rewrite_ops(task, at)
        if caps:
            task["capabilities"] = sorted(set(task.get("capabilities", [])) | set(caps))
    return load(data, sc, name)


@policy("mlock", target=READERS)
def mlock_first(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """mlock the whole mapping right after mmap, before parsing (with CAP_IPC_LOCK, as a server
    would)."""
    return _after_mmaps(sc, target, "mlock", lambda a: [{"mlock": {"map": a["map"]}}],
                        caps=["ipc_lock"])


@policy("populate", target=READERS)
def populate_first(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """MADV_POPULATE_READ the whole mapping right after mmap (ENOMEM/EFAULT instead of a kill
    or SIGBUS in the parse)."""
    return _after_mmaps(sc, target, "populate",
                        lambda a: [{"madvise": {"map": a["map"], "advice": "populate_read"}}])


@policy("map_populate", target=READERS)
def map_populate(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """mmap with MAP_POPULATE (errors ignored: holes still fault later)."""
    return _after_mmaps(sc, target, "map_populate", lambda a: [], flags=["populate"])


def _memlock_bytes(task: Data) -> int | None:
    """The task's RLIMIT_MEMLOCK in bytes (None: unlimited)."""
    v = task.get("rlimits", {}).get("memlock", "8MiB")
    return None if v == "max" else parse_bytes(v)


@policy("mlock_chunked", Param("window", default=None, help="default: RLIMIT_MEMLOCK"),
        target=READERS)
def mlock_chunked(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """mlock, parse and munlock the mapping a window at a time, each window within
    RLIMIT_MEMLOCK (no CAP_IPC_LOCK needed)."""
    data = dump(sc)
    ps = parse_bytes(data.get("machine", {}).get("page_size", "4KiB"))
    for task in reader_tasks(data, target, "mlock_chunked"):
        maps = {a["map"]: map_length(data, a, "mlock_chunked") for _, a in shared_mmaps(data, task)}
        limit = params.get("window") or _memlock_bytes(task)
        touched = {op_of(r)[1]["map"] for r in task["ops"] if op_of(r)[0] == "touch"}

        def windows(name: str, lo: int, hi: int, touch: Data | None,
                    limit: int | None = limit) -> list[Any]:
            w = hi - lo if limit is None else max(ps, limit // ps * ps)
            out: list[Any] = []
            for a in range(lo, hi, w):
                rng = [a, min(hi, a + w)]
                out.append({"mlock": {"map": name, "range": rng}})
                if touch is not None:
                    t = {k: v for k, v in touch.items() if k not in ("range", "count")}
                    out.append({"touch": {**t, "map": name, "range": rng}})
                out.append({"munlock": {"map": name, "range": rng}})
            return out

        def at(i: int, raw: Any, maps: dict[str, int] = maps, touched: set[str] = touched,
               windows: Any = windows) -> list[Any] | None:
            name, a = op_of(raw)
            if name == "mmap" and a.get("map") in maps and a["map"] not in touched:
                return [raw, *windows(a["map"], 0, maps[a["map"]], None)]
            if name == "touch" and a["map"] in maps:
                whole = maps[a["map"]]
                lo, hi = (0, whole) if a.get("range") is None else (
                    parse_bytes(a["range"][0], whole), parse_bytes(a["range"][1], whole))
                return windows(a["map"], lo, hi, a)
            return None

        rewrite_ops(task, at)
    return load(data, sc, "mlock_chunked")


@policy("read_syscall", target=READERS)
def read_syscall(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """read(2) the file into a private anonymous buffer of the mapping's size instead of
    mmap: holes cost nothing, the buffer's pages are charged."""
    data = dump(sc)
    for task in reader_tasks(data, target, "read_syscall"):
        idx = {i: a for i, a in shared_mmaps(data, task)}

        def at(i: int, raw: Any, idx: dict[int, Data] = idx) -> list[Any] | None:
            if i not in idx:
                return None
            a = idx[i]
            length = map_length(data, a, "read_syscall")
            return [{"alloc_anon": {"size": length, "map": a["map"], "touched": True}},
                    {"read": {"fd": a["fd"], "offset": a.get("offset", 0), "length": length}}]

        rewrite_ops(task, at)
    return load(data, sc, "read_syscall")


@policy("prefault_helper", target=READERS)
def prefault_helper(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """A helper task in the sender's cgroup maps the file and MADV_POPULATE_READs it after
    the sender and before the readers: the holes are charged to the sender's side."""
    data = dump(sc)
    names = {t["name"] for t in data["tasks"]}
    readers = reader_tasks(data, target, "prefault_helper")
    fds = sorted({a["fd"] for t in readers for _, a in shared_mmaps(data, t)})
    sealed = sealed_fds(data)
    for fd in fds:
        sender = _sender_of(data, fd, fd in sealed)
        helper = f"prefault_{fd}"
        while helper in names:
            helper += "_"
        names.add(helper)
        m = f"{helper}.map"
        data["tasks"].insert(data["tasks"].index(sender) + 1, {
            "name": helper, "cgroup": sender.get("cgroup", "/"),
            "start": {"after": sender["name"]},
            "ops": [{"mmap": {"fd": fd, "map": m, "prot": ["read"], "flags": ["shared"]}},
                    {"madvise": {"map": m, "advice": "populate_read"}},
                    {"munmap": {"map": m}}]})
        for t in readers:
            if any(a["fd"] == fd for _, a in shared_mmaps(data, t)) and \
                    t.get("start") == {"after": sender["name"]}:
                t["start"] = {"after": helper}
    return load(data, sc, "prefault_helper")


def _sender_of(data: Data, fd: str, sealed: bool) -> Data:
    """The task that passes the file: the one that seals it, else the one that creates it."""
    if sealed:
        for t in sealer_tasks(data, None, "prefault_helper"):
            if any(op_of(r)[0] == "add_seals" and op_of(r)[1]["fd"] == fd for r in t["ops"]):
                return t
    for t in data["tasks"]:
        if any(op_of(r)[0] in ("memfd_create", "open", "shmget") and op_of(r)[1].get("fd") == fd
               for r in t["ops"]):
            return t
    raise ScenarioError(f"policy 'prefault_helper': no task creates fd {fd!r}")
