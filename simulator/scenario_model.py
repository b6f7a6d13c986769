"""The scenario file's top-level models: machine, sysctl, mounts, cgroups, tasks, expect.

These models and those of simulator/scenario_ops.py are the single source of the format
(docs/scenario-format.md and the JSON Schema come from them). They check the shape of each
key; the cross-field checks are in validify.py and the loading in scenario.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, PrivateAttr, Tag, ValidationInfo, field_validator

from .scenario_ops import Op
from .scenario_types import Duration, Flag, Size, SizeOrMax, Strict
from .units import parse_bytes
from .userspace.config import UserspaceOomSpec

RESERVED_EXPECT_KEYS = ("memcg", "files", "nodes")


class NodeSpec(Strict):
    """A NUMA node: its memory, and optionally what the kernel keeps for itself."""

    memory: Size
    reserved: Size | None = Field(default=None, description="pages not managed (default: memmap, 1/64)")
    distance: list[int] | None = None


class CostsSpec(Strict):
    """Simulated time per page (or per call); defaults are the 6.18 measurements."""

    fault: Duration | None = None
    populate: Duration | None = None
    map_populate: Duration | None = None
    mlock: Duration | None = None
    fallocate: Duration | None = None
    read: Duration | None = None
    write: Duration | None = None
    swapin: Duration | None = None
    pageout: Duration | None = None
    disk_read: Duration | None = Field(default=None, description="a page read from disk into the page cache")
    writeback: Duration | None = Field(default=None, description="a dirty page of a disk file written back")
    syscall: Duration | None = None
    exit: Duration | None = None
    pgtable_rcu: Duration | None = None
    quantum: Duration | None = None


class SwapSpec(Strict):
    """A swap device with its kind: `zram` (memory-backed, SWP_SYNCHRONOUS_IO: swap-in reads
    the page at once, without the swap cache) or `disk` (a swap partition or file on a block
    device: every page read and written takes a device's time)."""

    size: Size
    kind: Literal["zram", "disk"] = "zram"
    read: Duration | None = Field(
        default=None, description="a page read at swap-in (default: costs.swapin for zram, "
        "100us for disk)")
    write: Duration | None = Field(
        default=None, description="a page written at swap-out (default: costs.pageout for zram, "
        "10us for disk)")


def _swap_form(v: Any) -> str:
    return "SwapDevice" if isinstance(v, (dict, SwapSpec)) else "SwapSize"


# A mapping is a device (its errors name its keys), anything else a bare size.
SwapOrSize = Annotated[Union[Annotated[Size, Tag("SwapSize")], Annotated[SwapSpec, Tag("SwapDevice")]],
                       Discriminator(_swap_form)]


def swap_size(swap: Size | SwapSpec) -> Size:
    """The size of `machine.swap`, given as a bare size (zram) or as a device."""
    return swap.size if isinstance(swap, SwapSpec) else swap


class MachineSpec(Strict):
    """The simulated machine."""

    page_size: Size = "4KiB"
    nodes: list[NodeSpec] = Field(default_factory=lambda: [NodeSpec(memory="4GiB")], min_length=1)
    swap: SwapOrSize = Field(
        default=0, description="the swap device: a bare size is zram-like (SWP_SYNCHRONOUS_IO: "
        "swap-in without readahead or swap cache); `{size, kind: disk, read, write}` a disk")
    page_cache: Size = 0
    costs: CostsSpec = Field(default_factory=CostsSpec)
    profile: str | None = Field(
        default=None, description="a machine profile YAML (`oomsim validate --calibrate` writes one), "
        "relative to the scenario file: its costs apply where `costs` sets none")

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        base = (info.context or {}).get("base_dir")
        p = Path(v) if Path(v).is_absolute() or base is None else Path(base) / v
        return str(p)  # the loader reads it (scenario.py), once

    @field_validator("page_size")
    @classmethod
    def _page_size(cls, v: Any) -> Any:
        n = parse_bytes(v)
        if n not in (4096, 16384, 65536):
            raise ValueError(f"expected 4KiB, 16KiB or 64KiB, got {v!r}")
        return v


class SysctlSpec(Strict):
    """The vm sysctls the modelled paths read (defaults are the kernel's)."""

    overcommit_memory: Literal[0, 1, 2] = 0
    overcommit_ratio: int = Field(default=50, ge=0)
    overcommit_kbytes: int = Field(default=0, ge=0)
    admin_reserve_kbytes: int | None = Field(default=None, ge=0)
    user_reserve_kbytes: int | None = Field(default=None, ge=0)
    min_free_kbytes: int | None = Field(default=None, ge=0)
    watermark_scale_factor: int = Field(default=10, ge=1, le=3000)
    panic_on_oom: Literal[0, 1, 2] = 0
    oom_kill_allocating_task: Literal[0, 1] = 0
    swappiness: int = Field(default=60, ge=0, le=200)


class MountSpec(Strict):
    """A mount: tmpfs (size 0 means unlimited, no size means half of RAM, the kernel default),
    or a disk filesystem whose `files` are on disk and not yet in the page cache."""

    path: str
    type: Literal["tmpfs", "disk"] = Field(
        default="tmpfs", description="`tmpfs`, or `disk`: files on disk, read into the page cache")
    size: Size | None = None
    noswap: bool = Field(default=False, description="the `noswap` mount option: its pages never go to swap")
    files: dict[str, Size] = Field(
        default_factory=dict, description="a disk mount's files: name -> size, on disk at start "
        "(open them as PATH/NAME)")


class CgroupSpec(Strict):
    """A memory cgroup's control files (cgroup v2 names; v1's oom_kill_disable, memsw and
    swappiness)."""

    memory_max: SizeOrMax = Field(default="max", alias="memory.max")
    memory_high: SizeOrMax = Field(default="max", alias="memory.high")
    memory_low: Size = Field(default=0, alias="memory.low")
    memory_min: Size = Field(default=0, alias="memory.min")
    memory_swap_max: SizeOrMax = Field(default="max", alias="memory.swap.max")
    memory_oom_group: Flag = Field(default=False, alias="memory.oom.group")
    memory_oom_kill_disable: Flag = Field(default=False, alias="memory.oom_kill_disable")
    memory_memsw_limit_in_bytes: SizeOrMax = Field(
        default="max", alias="memory.memsw.limit_in_bytes",
        description="cgroup v1: the memory+swap limit (reclaim may not swap once it binds)")
    memory_swappiness: int | None = Field(
        default=None, ge=0, le=200, alias="memory.swappiness",
        description="cgroup v1: this memcg's swappiness (default: vm.swappiness); 0 reclaims "
                    "file pages only")
    cpuset_mems: list[int] | None = Field(
        default=None, alias="cpuset.mems", description="the NUMA nodes its tasks may allocate "
        "from (cgroup v2 cpuset): effective mems are these within the parent's effective mems, "
        "or the parent's if that leaves none")


# -- ops --------------------------------------------------------------------------------------


class StartAfter(Strict):
    """Start when another task has run all its ops."""

    after: str


class Rlimits(Strict):
    """Resource limits (RLIMIT_MEMLOCK defaults to 8 MiB)."""

    memlock: SizeOrMax = "8MiB"


class Footprint(Strict):
    """What a process has before its first op: charged to its memcg at start.

    The defaults are what `oomsim validate` measured for its C worker on 6.18 (anonymous
    memory, kernel stack, page tables) before the first op."""

    anon: Size = "112KiB"
    kernel: Size = "16KiB"
    page_tables: Size = "48KiB"
    vm: Size = "2MiB"
    committed: Size = "256KiB"


class MempolicySpec(Strict):
    """A task's NUMA memory policy (set_mempolicy(2)): `default`/`local` allocate on the
    task's node and fall back by distance; `preferred` (one node) likewise from its node;
    `bind` only from its nodes (an OOM there is CONSTRAINT_MEMORY_POLICY); `interleave`
    spreads pages over its nodes by index, falling back like `preferred`."""

    mode: Literal["default", "local", "preferred", "bind", "interleave"] = "default"
    nodes: list[int] | None = None


class TaskSpec(Strict):
    """A process and the ops it runs."""

    name: str
    cgroup: str = "/"
    start: Duration | StartAfter = 0
    oom_score_adj: int = Field(default=0, ge=-1000, le=1000)
    rlimits: Rlimits = Field(default_factory=Rlimits)
    capabilities: list[Literal["ipc_lock", "sys_resource", "sys_admin"]] = []
    footprint: Footprint = Field(default_factory=Footprint)
    node: int = Field(default=0, ge=0)
    mempolicy: MempolicySpec | None = None
    sigterm: Literal["exit", "ignore"] = Field(
        default="exit", description="what the program does on SIGTERM (from a userspace OOM "
        "killer): `exit` (the default action, as fatal as SIGKILL) or `ignore` (it handles "
        "the signal and runs on: only SIGKILL ends it)")
    ops: list[Op] = []


# Every outcome a task can end with (tasks.py, simulation.py): `killed` is a SIGKILL that was
# not the OOM killer's (a group kill's bystander is `oom_killed` too).
Outcome = Literal["ok", "error", "sigbus", "sigsegv", "oom_killed", "killed", "hung", "panic"]


class ExpectTask(Strict):
    """An expected outcome with detail."""

    outcome: Outcome
    errno: str | None = None
    op: str | None = None
    page: int | None = None
    reason: str | None = None


class Bound(Strict):
    """An expected counter's range, both ends included; either may be left out."""

    min: Union[int, float, str, None] = None
    max: Union[int, float, str, None] = None


# usage, anon, ...: a size; events: {name: count or Bound}; pressure: {name: value or Bound}.
MemcgExpect = dict[str, Union[Size, dict[str, Union[int, float, str, Bound]]]]
NodesExpect = dict[int, dict[str, Size]]  # `nodes:` node id -> counter -> size or pages


class WhatIfSpec(Strict):
    """Behaviour no kernel has (see simulator/mm/profiles.py)."""

    zero_page_sealed_holes: bool = False
    charge_at_seal: bool = Field(
        default=False, description="F_ADD_SEALS against writes instantiates and charges every "
        "hole of the file (as fallocate), failing with ENOMEM/ENOSPC instead of a later read")


class SweepSpec(Strict):
    """An experiment over the scenario (`oomsim sweep`): runs x grid x policies x kernels.

    Attributes:
        runs: runs per cell; run i draws the same workload in every cell and under every policy.
        grid: dotted paths into the scenario (`cgroups./app.memory.max`) and the values to try.
        policies: mitigation policies (`oomsim policies`); the first is the baseline.
        kernels: kernel profiles; default the scenario's.
    """

    runs: int = Field(default=1, ge=1)
    grid: dict[str, list[Any]] = {}
    policies: list[str] = ["none"]
    kernels: list[Literal["6.18", "3.15"]] | None = None


class Scenario(Strict):
    """A scenario file."""

    name: str
    description: str = ""
    seed: int = 1
    kernel: Literal["6.18", "3.15"] = "6.18"
    duration: Duration = "60s"
    machine: MachineSpec = Field(default_factory=MachineSpec)
    sysctl: SysctlSpec = Field(default_factory=SysctlSpec)
    mounts: list[MountSpec] = []
    cgroups: dict[str, CgroupSpec] = {}
    tasks: list[TaskSpec] = Field(min_length=1)
    what_if: WhatIfSpec = Field(default_factory=WhatIfSpec)
    expect: dict[str, Union[Outcome, ExpectTask, dict[str, MemcgExpect], NodesExpect]] = {}
    sweep: SweepSpec | None = None
    userspace_oom: UserspaceOomSpec | None = Field(
        default=None, description="userspace OOM killers (earlyoom, systemd_oomd, oomd) running "
        "beside the kernel's; see UserspaceOomSpec")
    # Set by the loader: `file:line: key: message` of each setting accepted but without effect.
    _warnings: tuple[str, ...] = PrivateAttr(default=())
    # Set by the loader for a scenario with distributions: what run 0 drew, by field path.
    _draws: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the loader warned about (features not modelled yet, ignored settings)."""
        return self._warnings

    @property
    def draws(self) -> dict[str, Any]:
        """The values drawn for this workload, by field path (empty: nothing was drawn)."""
        return self._draws
