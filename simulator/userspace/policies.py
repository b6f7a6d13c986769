"""The mitigation policies `earlyoom`, `systemd_oomd` and `oomd`: the scenario as written, with
that userspace OOM killer running beside the kernel's, at its project's defaults.

simulator/policies.py adds them to its registry (`POLICIES.update(USERSPACE_POLICIES)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..registry import Registry
from ..scenario_model import Scenario

USERSPACE_POLICIES: Registry[Callable[[Scenario], Scenario]] = Registry()
policy = USERSPACE_POLICIES.register


def with_killer(sc: Scenario, name: str) -> Scenario:
    """The scenario with `userspace_oom.<name>` added (its own settings kept if it has them)."""
    data = sc.model_dump(by_alias=True, exclude_unset=True)
    killers: dict[str, Any] = data.setdefault("userspace_oom", {})
    killers.setdefault(name, {})
    return Scenario.model_validate(data)


@policy("earlyoom")
def earlyoom(sc: Scenario) -> Scenario:
    """earlyoom at its defaults: SIGTERM the highest oom_score at <=10% available and free swap."""
    return with_killer(sc, "earlyoom")


@policy("systemd_oomd")
def systemd_oomd(sc: Scenario) -> Scenario:
    """systemd-oomd at its defaults: kill a cgroup after 30 s of full pressure > 60%, or at 90% swap."""
    return with_killer(sc, "systemd_oomd")


@policy("oomd")
def oomd(sc: Scenario) -> Scenario:
    """Meta's oomd (desktop rules): pressure > 60 for 30 s with reclaim -> kill by size or growth."""
    return with_killer(sc, "oomd")
