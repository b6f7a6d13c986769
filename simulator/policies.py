"""Mitigations as strategies: each rewrites a scenario the way a program would change.

The 2014 discussion weighed these answers to "reading holes of a sealed file can fail":
populate or mlock the mapping first (fail early, at a known point), map ZERO_PAGE for holes of
write-sealed files (a kernel change never made), or accept OOM as orthogonal (`none`). Each
policy is registered by name; `oomsim compare` runs a scenario under several and tabulates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .registry import Registry
from .scenario_model import Scenario
from .scenario_ops import op_name

Policy = Callable[[Scenario], Scenario]
POLICIES: Registry[Policy] = Registry()
policy = POLICIES.register


def _after_each_mmap(sc: Scenario, extra: Callable[[str], dict[str, Any] | None],
                     mmap_flags: list[str] | None = None, caps: list[str] | None = None) -> Scenario:
    """Insert an op after every shared mmap of every task (and optionally change the mmap)."""
    data = sc.model_dump(by_alias=True, exclude_unset=True)
    for t_spec, t in zip(data["tasks"], sc.tasks, strict=True):
        new_ops: list[Any] = []
        touched = False
        for raw, o in zip(t_spec.get("ops", []), t.ops, strict=True):
            if op_name(o) == "mmap" and "shared" in raw["mmap"]["flags"]:
                if mmap_flags:
                    raw = {"mmap": {**raw["mmap"],
                                    "flags": sorted(set(raw["mmap"]["flags"]) | set(mmap_flags))}}
                new_ops.append(raw)
                add = extra(raw["mmap"]["map"])
                if add is not None:
                    new_ops.append(add)
                touched = True
                continue
            new_ops.append(raw)
        t_spec["ops"] = new_ops
        if touched and caps:
            t_spec["capabilities"] = sorted(set(t_spec.get("capabilities", [])) | set(caps))
    return Scenario.model_validate(data)


@policy("none")
def no_mitigation(sc: Scenario) -> Scenario:
    """Accept OOM as orthogonal: the program as written."""
    return sc


@policy("mlock")
def mlock_first(sc: Scenario) -> Scenario:
    """mlock every shared mapping right after mmap (with CAP_IPC_LOCK, as a server would)."""
    return _after_each_mmap(sc, lambda m: {"mlock": {"map": m}}, caps=["ipc_lock"])


@policy("populate")
def populate_first(sc: Scenario) -> Scenario:
    """MADV_POPULATE_READ every shared mapping right after mmap."""
    return _after_each_mmap(sc, lambda m: {"madvise": {"map": m, "advice": "populate_read"}})


@policy("map_populate")
def map_populate(sc: Scenario) -> Scenario:
    """mmap with MAP_POPULATE (errors ignored: holes still fault later)."""
    return _after_each_mmap(sc, lambda m: None, mmap_flags=["populate"])


@policy("zero_page")
def zero_page(sc: Scenario) -> Scenario:
    """The kernel change proposed in 2014: ZERO_PAGE for read faults on write-sealed holes."""
    data = sc.model_dump(by_alias=True, exclude_unset=True)
    data["what_if"] = {"zero_page_sealed_holes": True}
    return Scenario.model_validate(data)


from .userspace.policies import USERSPACE_POLICIES  # noqa: E402  (earlyoom, systemd_oomd, oomd)

POLICIES.update(USERSPACE_POLICIES)
