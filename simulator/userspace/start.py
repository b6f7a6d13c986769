"""Start the userspace OOM killers a scenario's `userspace_oom` key names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .earlyoom import earlyoom
from .oomd import oomd
from .systemd_oomd import systemd_oomd

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from .config import UserspaceOomSpec


def start_userspace_oom(m: Machine, spec: UserspaceOomSpec | None) -> None:
    """Each configured killer as SimPy processes, started with the tasks (time 0)."""
    if spec is None:
        return
    if spec.earlyoom is not None:
        m.env.process(earlyoom(m, spec.earlyoom))
    if spec.systemd_oomd is not None:
        systemd_oomd(m, spec.systemd_oomd)
    if spec.oomd is not None:
        m.env.process(oomd(m, spec.oomd))
