"""The scenario file format: pydantic models, units, and line-numbered errors.

The models here are the single source of the format (README's reference and the JSON Schema
come from them). Sizes keep their units until the simulation is built, where they are converted
to pages once; everything else is checked here, so that a bad file fails before anything runs
with one message naming the file, the line, the key path, what was expected and what was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from .units import UnitError, parse_bytes, read_duration, read_size

RESERVED_EXPECT_KEYS = ("memcg", "files")


class ScenarioError(Exception):
    """A scenario that cannot run: the message names file, line, key path and the problem."""

    def __init__(self, message: str, path: tuple[Any, ...] = (), file: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.path, self.file, self.line = message, path, file, line

    def __str__(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        key = keypath(self.path)
        return f"{where}: {key + ': ' if key else ''}{self.message}"


def keypath(path: tuple[Any, ...]) -> str:
    """`tasks[1].ops[2].touch.access` for ('tasks', 1, 'ops', 2, 'touch', 'access')."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


# -- value types ------------------------------------------------------------------------------
def _check_size(v: Any) -> Any:
    try:
        return read_size(v)
    except UnitError as e:
        raise ValueError(str(e)) from None


def _check_size_or_max(v: Any) -> Any:
    if v == "max":
        return v
    return _check_size(v)


def _check_duration(v: Any) -> Any:
    try:
        return read_duration(v)
    except UnitError as e:
        raise ValueError(str(e)) from None


def _as_written(v: Any) -> Any:
    """Dumps give back the text as written (a plain str, not the parsed SizeText)."""
    return str(v) if isinstance(v, str) else v


_Written = PlainSerializer(_as_written)
Size = Annotated[Union[int, str], AfterValidator(_check_size), _Written]
SizeOrMax = Annotated[Union[int, str], AfterValidator(_check_size_or_max), _Written]
Duration = Annotated[Union[int, float, str], AfterValidator(_check_duration), _Written]
Range = Annotated[list[Size], Field(min_length=2, max_length=2)]
Flag = Annotated[bool, BeforeValidator(lambda v: bool(v) if v in (0, 1) else v)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# -- machine, sysctl, mounts, cgroups ---------------------------------------------------------
class NodeSpec(Strict):
    """A NUMA node: its memory, and optionally what the kernel keeps for itself."""

    memory: Size
    reserved: Size | None = Field(None, description="pages not managed (default: memmap, 1/64)")
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
    syscall: Duration | None = None
    exit: Duration | None = None
    quantum: Duration | None = None


class MachineSpec(Strict):
    """The simulated machine."""

    page_size: Size = "4KiB"
    nodes: list[NodeSpec] = Field(default_factory=lambda: [NodeSpec(memory="4GiB")], min_length=1)
    swap: Size = Field(0, description="the swap device, treated as SWP_SYNCHRONOUS_IO (zram): "
                       "swap-in without readahead or swap cache")
    page_cache: Size = 0
    costs: CostsSpec = Field(default_factory=CostsSpec)
    profile: str | None = Field(
        None, description="a machine profile YAML (`oomsim validate --calibrate` writes one), "
        "relative to the scenario file: its costs apply where `costs` sets none")

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        base = (info.context or {}).get("base_dir")
        p = Path(v) if Path(v).is_absolute() or base is None else Path(base) / v
        from .machine_profile import load_profile

        load_profile(p)  # a missing or bad profile fails here, at the scenario's line
        return str(p)

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
    overcommit_ratio: int = Field(50, ge=0)
    overcommit_kbytes: int = Field(0, ge=0)
    admin_reserve_kbytes: int | None = Field(None, ge=0)
    user_reserve_kbytes: int | None = Field(None, ge=0)
    min_free_kbytes: int | None = Field(None, ge=0)
    watermark_scale_factor: int = Field(10, ge=1, le=3000)
    panic_on_oom: Literal[0, 1, 2] = 0
    oom_kill_allocating_task: Literal[0, 1] = 0
    swappiness: int = Field(60, ge=0, le=200)


class MountSpec(Strict):
    """A tmpfs mount; size 0 means unlimited, no size means half of RAM (the kernel default)."""

    path: str
    size: Size | None = None
    noswap: bool = Field(False, description="the `noswap` mount option: its pages never go to swap")


class CgroupSpec(Strict):
    """A memory cgroup's control files (cgroup v2 names; v1's oom_kill_disable)."""

    memory_max: SizeOrMax = Field("max", alias="memory.max")
    memory_high: SizeOrMax = Field("max", alias="memory.high")
    memory_low: Size = Field(0, alias="memory.low")
    memory_min: Size = Field(0, alias="memory.min")
    memory_swap_max: SizeOrMax = Field("max", alias="memory.swap.max")
    memory_oom_group: Flag = Field(False, alias="memory.oom.group")
    memory_oom_kill_disable: Flag = Field(False, alias="memory.oom_kill_disable")


# -- ops --------------------------------------------------------------------------------------
class MemfdCreate(Strict):
    """memfd_create(2)."""

    fd: str
    flags: list[Literal["allow_sealing", "noexec_seal"]] = []


class Open(Strict):
    """open(2) of a file on a tmpfs mount, created if absent."""

    fd: str
    path: str
    mode: Literal["rdwr", "rdonly"] = "rdwr"


class Shmget(Strict):
    """shmget(2): a SysV shared memory segment (its id named like an fd), attached with mmap."""

    fd: str
    size: Size
    flags: list[Literal["noreserve"]] = []


class Ftruncate(Strict):
    """ftruncate(2)."""

    fd: str
    size: Size


class Write(Strict):
    """write(2) in a loop until all is written or an error."""

    fd: str
    offset: Size = 0
    length: Size


class Read(Strict):
    """read(2)/pread(2) (sendfile and splice behave alike: holes come from ZERO_PAGE)."""

    fd: str
    offset: Size = 0
    length: Size | None = None


class Fallocate(Strict):
    """fallocate(2): allocate (default), keep_size, or punch_hole."""

    fd: str
    offset: Size = 0
    length: Size
    flags: list[Literal["keep_size", "punch_hole"]] = []


class AddSeals(Strict):
    """fcntl(F_ADD_SEALS)."""

    fd: str
    seals: list[Literal["seal", "shrink", "grow", "write", "future_write", "exec"]]


class Mmap(Strict):
    """mmap(2) of a file."""

    fd: str
    map: str
    prot: list[Literal["read", "write"]] = ["read"]
    flags: list[Literal["shared", "private", "populate", "locked", "noreserve"]]
    offset: Size = 0
    length: Size | None = None

    @field_validator("flags")
    @classmethod
    def _one_of_shared_private(cls, v: list[str]) -> list[str]:
        if ("shared" in v) == ("private" in v):
            raise ValueError("expected exactly one of shared or private")
        return v


class MapOnly(Strict):
    """An op that names a map only (munmap)."""

    map: str


class Touch(Strict):
    """The program reads or writes one byte of each page (MAP faults)."""

    map: str
    access: Literal["read", "write"]
    range: Range | None = None
    pattern: Literal["sequential", "random", "stride"] = "sequential"
    stride: Size | None = None


class Mlock(Strict):
    """mlock(2) / munlock(2)."""

    map: str
    range: Range | None = None


class Mlock2(Strict):
    """mlock2(2)."""

    map: str
    range: Range | None = None
    flags: list[Literal["onfault"]] = []


class Madvise(Strict):
    """madvise(2)."""

    map: str
    advice: Literal["populate_read", "populate_write", "willneed", "dontneed", "pageout"]
    range: Range | None = None


class Mprotect(Strict):
    """mprotect(2) of a whole map."""

    map: str
    prot: list[Literal["read", "write"]]


class AllocAnon(Strict):
    """Private anonymous memory: mmap(MAP_PRIVATE|MAP_ANONYMOUS), touched for writing or not."""

    size: Size
    touched: bool = True
    map: str | None = None


class Close(Strict):
    """close(2) of a file descriptor."""

    fd: str


class Empty(Strict):
    """exit: no arguments."""


OP_ARGS: dict[str, Any] = {
    "memfd_create": MemfdCreate,
    "open": Open,
    "shmget": Shmget,
    "ftruncate": Ftruncate,
    "write": Write,
    "read": Read,
    "fallocate": Fallocate,
    "add_seals": AddSeals,
    "mmap": Mmap,
    "munmap": MapOnly,
    "touch": Touch,
    "mlock": Mlock,
    "munlock": Mlock,
    "mlock2": Mlock2,
    "madvise": Madvise,
    "mprotect": Mprotect,
    "alloc_anon": AllocAnon,
    "close": Close,
    "oom_score_adj": Annotated[int, Field(ge=-1000, le=1000)],
    "sleep": Duration,
    "exit": Empty,
}


def _op_model(name: str, args: Any) -> type[BaseModel]:
    return type(
        f"Op_{name}",
        (Strict,),
        {"__annotations__": {name: args}, "__doc__": f"The `{name}` op."},
    )


OP_MODELS = {name: _op_model(name, args) for name, args in OP_ARGS.items()}


def _op_tag(v: Any) -> str | None:
    if isinstance(v, str):
        return v if v in OP_MODELS else None
    if isinstance(v, BaseModel):
        return next(iter(type(v).model_fields))
    if isinstance(v, dict) and len(v) == 1:
        k = next(iter(v))
        return k if k in OP_MODELS else None
    return None


def _bare_op(v: Any) -> Any:
    if isinstance(v, str) and v == "exit":
        return {"exit": {}}
    if isinstance(v, dict) and len(v) == 1 and "exit" in v and v["exit"] is None:
        return {"exit": {}}
    return v


Op = Annotated[
    Union[tuple(Annotated[model, Tag(name)] for name, model in OP_MODELS.items())],  # type: ignore[valid-type]
    Discriminator(
        _op_tag,
        custom_error_type="invalid_op",
        custom_error_message="expected one op, a mapping with exactly one of the keys "
        + ", ".join(OP_MODELS),
    ),
    BeforeValidator(_bare_op),
]


_OP_NAMES = {model: name for name, model in OP_MODELS.items()}


def op_name(op: BaseModel) -> str:
    """The op's name (its one key)."""
    return _OP_NAMES[type(op)]


def op_args(op: BaseModel) -> Any:
    """The op's arguments."""
    return getattr(op, op_name(op))


# -- tasks, expectations, the scenario --------------------------------------------------------
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


class TaskSpec(Strict):
    """A process and the ops it runs."""

    name: str
    cgroup: str = "/"
    start: Duration | StartAfter = 0
    oom_score_adj: int = Field(0, ge=-1000, le=1000)
    rlimits: Rlimits = Field(default_factory=Rlimits)
    capabilities: list[Literal["ipc_lock", "sys_resource", "sys_admin"]] = []
    footprint: Footprint = Field(default_factory=Footprint)
    node: int = Field(0, ge=0)
    ops: list[Op] = []


Outcome = Literal["ok", "error", "sigbus", "oom_killed", "hung", "panic"]


class ExpectTask(Strict):
    """An expected outcome with detail."""

    outcome: Outcome
    errno: str | None = None
    op: str | None = None
    page: int | None = None
    reason: str | None = None


MemcgExpect = dict[str, Union[Size, dict[str, int]]]


class WhatIfSpec(Strict):
    """Behaviour no kernel has (see simulator/mm/profiles.py)."""

    zero_page_sealed_holes: bool = False


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
    expect: dict[str, Union[Outcome, ExpectTask, dict[str, MemcgExpect]]] = {}


# -- loading ----------------------------------------------------------------------------------
def _line_of(data: Any, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of `path` found in ruamel's round-trip data."""
    node, line = data, None
    for key in path:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and key in node:
                if lc is not None:
                    line = lc.key(key)[0] + 1
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                if lc is not None:
                    line = lc.item(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, TypeError, AttributeError):
            break
    if line is None and getattr(data, "lc", None) is not None:
        line = data.lc.line + 1
    return line


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union tags from an error location (`touch.touch.access`)."""
    out: list[Any] = []
    for p in loc:
        if isinstance(p, str) and (
            (out and out[-1] == p) or p in ("str", "int", "float", "StartAfter", "ExpectTask")
            or p.startswith("literal[") or p.startswith("function-")
        ):
            continue
        out.append(p)
    return tuple(out)


def _describe(err: dict[str, Any]) -> str:
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        return "unknown key (a typo?)"
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    if err["type"] not in ("value_error",) and not isinstance(got, (dict, list)):
        msg += f", got {got!r}"
    return msg


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Parse and validate scenario text; raise ScenarioError with file, line and key path."""
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(f"not valid YAML: {e.problem or e}", file=file, line=line) from None
    except Exception as e:  # ruamel raises several unmarked kinds (duplicate keys and such)
        raise ScenarioError(f"not valid YAML: {e}", file=file) from None
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping at the top level", file=file, line=1)
    try:
        sc = Scenario.model_validate(data, context={"base_dir": str(Path(file).parent)})
    except ValidationError as e:
        errors = e.errors()
        # A typo shows as an unknown key plus a missing one: report the unknown key first.
        err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
        loc = _clean_loc(tuple(err["loc"]))
        msg = _describe(err)
        if err["type"] == "extra_forbidden":
            missing = [_clean_loc(tuple(x["loc"]))[-1] for x in errors if x["type"] == "missing"
                       and _clean_loc(tuple(x["loc"]))[:-1] == loc[:-1]]
            if missing:
                msg += f"; missing: {', '.join(map(str, missing))}"
        raise ScenarioError(msg, loc, file, _line_of(data, loc)) from None
    try:
        from .validify import validify

        validify(sc)
    except ScenarioError as e:
        e.file, e.line = file, _line_of(data, e.path)
        raise
    return sc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError(f"cannot read: {e.strerror}", file=str(p)) from None
    return parse_scenario(text, str(p))


def scenario_files(target: str | Path) -> list[Path]:
    """The scenario files of a path: the file itself, or every *.yaml below a directory."""
    p = Path(target)
    if p.is_dir():
        return sorted(q for q in p.rglob("*.yaml") if q.is_file())
    return [p]
