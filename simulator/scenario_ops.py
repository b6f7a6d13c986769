"""The ops of a task, one pydantic model each, and the `Op` union a task's list holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, field_validator

from .scenario_types import Duration, Range, Size, Strict


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
    count: int | None = Field(default=None, ge=0)


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


class MemoryReclaim(Strict):
    """A write to a memcg's memory.reclaim (cgroup v2 proactive reclaim): EAGAIN when it falls
    short."""

    cgroup: str
    size: Size
    swappiness: int | None = Field(default=None, ge=0, le=200,
                                   description="the `swappiness=` argument (default: the memcg's)")


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
    "memory_reclaim": MemoryReclaim,
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


if TYPE_CHECKING:
    Op = BaseModel  # one of OP_MODELS; the union below is built at run time
else:
    Op = Annotated[
        Union[tuple(Annotated[model, Tag(name)] for name, model in OP_MODELS.items())],
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
