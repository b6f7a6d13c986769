"""Memory cgroups of our own for real-kernel experiments, on cgroup v2 or v1.

The rules this module keeps: only cgroups it creates itself (a unique name under the memory
controller's root), the limit written before any process enters, nothing else touched, and
everything it created removed again, also on failure or Ctrl-C (`MemoryCgroup` is a context
manager; `remove()` kills only the processes inside our own cgroup before rmdir).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..units import parse_bytes

if TYPE_CHECKING:
    from ..scenario_model import CgroupSpec

V2_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
V1_ROOT = Path("/sys/fs/cgroup/memory")


class CgroupUnavailable(RuntimeError):
    """No writable memory controller here (not root, or no memory cgroup mounted)."""


@dataclass(frozen=True)
class Controller:
    """Where the memory controller is mounted and which version it speaks."""

    root: Path
    version: int


def find_memory_controller() -> Controller:
    """The writable memory controller: cgroup v2 if it has `memory`, else v1."""
    if os.geteuid() != 0:
        raise CgroupUnavailable("not running as root")
    for root in V2_ROOTS:
        ctl = root / "cgroup.controllers"
        if ctl.exists() and "memory" in ctl.read_text().split():
            sub = root / "cgroup.subtree_control"
            if "memory" in sub.read_text().split() and os.access(root, os.W_OK):
                return Controller(root, 2)
    if (V1_ROOT / "memory.limit_in_bytes").exists() and os.access(V1_ROOT, os.W_OK):
        return Controller(V1_ROOT, 1)
    raise CgroupUnavailable("no writable memory cgroup controller (v2 with memory, or v1) found")


class MemoryCgroup:
    """A memory cgroup this process created, with its limit set before anyone enters."""

    def __init__(self, limit_bytes: int | None, name: str | None = None,
                 parent: MemoryCgroup | None = None, controller: Controller | None = None,
                 oom_kill_disable: bool | None = None, oom_group: bool = False,
                 swap: bool = False, swap_files: dict[str, str] | None = None) -> None:
        self.ctl: Controller = controller or (parent.ctl if parent else find_memory_controller())
        base = parent.path if parent else self.ctl.root
        self.path: Path = base / (name or f"oomsim-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.children: list[MemoryCgroup] = []
        self.memory_for_children = False
        if parent is not None and self.ctl.version == 2:
            parent.enable_memory_for_children()
        self.path.mkdir()
        try:
            if parent is None and self.ctl.version == 2:
                self.enable_memory_for_children()
            if limit_bytes is not None:
                self._write(("memory.max", "memory.limit_in_bytes"), str(limit_bytes))
            if not swap:  # no swap in here, even if the machine has some
                self._try_write("memory.swappiness" if self.ctl.version == 1 else "memory.swap.max",
                                "0")
            else:  # the scenario's own swap files (v1 memsw and swappiness, v2 swap.max)
                for name, value in (swap_files or {}).items():
                    (self.path / name).write_text(value)
            if self.ctl.version == 1:
                if oom_kill_disable is not None:  # else inherited from the parent
                    (self.path / "memory.oom_control").write_text(str(int(oom_kill_disable)))
            elif oom_group:
                (self.path / "memory.oom.group").write_text("1")
        except BaseException:
            self.path.rmdir()
            raise
        if parent is not None:
            parent.children.append(self)

    def enable_memory_for_children(self) -> None:
        """v2: let our own children have the memory controller (our cgroup only)."""
        if not self.memory_for_children:
            (self.path / "cgroup.subtree_control").write_text("+memory")
            self.memory_for_children = True

    def _write(self, names: tuple[str, str], value: str) -> None:
        (self.path / (names[0] if self.ctl.version == 2 else names[1])).write_text(value)

    def _try_write(self, name: str, value: str) -> None:
        try:
            (self.path / name).write_text(value)
        except OSError:
            pass

    def child(self, name: str, limit_bytes: int | None, oom_kill_disable: bool | None = None,
              oom_group: bool = False, swap: bool = False,
              swap_files: dict[str, str] | None = None) -> MemoryCgroup:
        """A child cgroup (its limits written before anyone enters it)."""
        return MemoryCgroup(limit_bytes, name=name, parent=self, oom_kill_disable=oom_kill_disable,
                            oom_group=oom_group, swap=swap, swap_files=swap_files)

    def procs_file(self) -> Path:
        """The file a pid is written to in order to move it here."""
        return self.path / "cgroup.procs"

    def add_pid(self, pid: int) -> None:
        """Move a process (one of ours) into this cgroup."""
        self.procs_file().write_text(str(pid))

    def pids(self) -> list[int]:
        """The processes in this cgroup."""
        try:
            return [int(x) for x in self.procs_file().read_text().split()]
        except FileNotFoundError:
            return []

    def oom_kills(self, local: bool = False) -> int:
        """How many tasks the OOM killer killed in this cgroup (v2 memory.events, v1 oom_control).

        v2 counts the whole subtree unless `local` (memory.events.local); v1's oom_control
        counts the cgroup's own tasks only.
        """
        f = "memory.oom_control" if self.ctl.version == 1 else (
            "memory.events.local" if local else "memory.events")
        for line in (self.path / f).read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0

    def usage_bytes(self) -> int:
        """memory.current / memory.usage_in_bytes."""
        f = "memory.current" if self.ctl.version == 2 else "memory.usage_in_bytes"
        return int((self.path / f).read_text())

    def stat(self) -> dict[str, int]:
        """memory.stat as a dict."""
        out = {}
        for line in (self.path / "memory.stat").read_text().splitlines():
            k, _, v = line.partition(" ")
            out[k] = int(v)
        return out

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left inside (only our own processes are ever here), then rmdir."""
        for c in self.children:
            c.remove(timeout)
        self.children.clear()
        deadline = time.monotonic() + timeout
        while self.path.exists():
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def __enter__(self) -> MemoryCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def scenario_swap_files(spec: CgroupSpec, version: int, ram: int) -> dict[str, str]:
    """The swap control files a scenario cgroup sets, as this controller names them: v1's
    memory.memsw.limit_in_bytes (written after memory.limit_in_bytes, which it may not be
    below) and memory.swappiness, v2's memory.swap.max."""
    out: dict[str, str] = {}
    if version == 1:
        if spec.memory_memsw_limit_in_bytes != "max":
            out["memory.memsw.limit_in_bytes"] = str(parse_bytes(spec.memory_memsw_limit_in_bytes, ram))
        if spec.memory_swappiness is not None:
            out["memory.swappiness"] = str(spec.memory_swappiness)
    elif spec.memory_swap_max != "max":
        out["memory.swap.max"] = str(parse_bytes(spec.memory_swap_max, ram))
    return out
