"""Userspace OOM killer policies: the scenario as written, with earlyoom, systemd-oomd or
Meta's oomd running beside the kernel's OOM killer (simulator/userspace/). Each starts from the
scenario's own `userspace_oom` settings, or its project's defaults; a parameter overrides one
setting (`earlyoom:mem_term_percent=20`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..scenario_model import Scenario
from ..userspace.config import EarlyoomSpec, OomdSpec, SystemdOomdSpec
from .registry import Param, policy
from .rewrite import dump, load


def setting(spec: type[BaseModel], name: str, kind: str, what: str) -> Param:
    """A parameter that overrides one setting of a killer's spec (None: keep the scenario's,
    else the spec's default, which the help quotes from the model)."""
    default = spec.model_fields[name].default
    return Param(name, kind, None, f"{what}; the scenario's setting, else the project's "
                                   f"default ({default})")


def with_killer(sc: Scenario, name: str, params: dict[str, Any] | None = None) -> Scenario:
    """The scenario with `userspace_oom.<name>` added: its own settings kept, the parameters
    given (those not None) written over them."""
    data = dump(sc)
    killers: dict[str, Any] = data.setdefault("userspace_oom", {})
    settings = dict(killers.get(name) or {})
    settings.update({k: v for k, v in (params or {}).items() if v is not None})
    killers[name] = settings
    return load(data, sc, name)


@policy("earlyoom",
        setting(EarlyoomSpec, "mem_term_percent", "float", "MemAvailable %, -m"),
        setting(EarlyoomSpec, "swap_term_percent", "float", "SwapFree %, -s"),
        target=None, example="earlyoom")
def earlyoom(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """earlyoom: SIGTERM the highest oom_score when MemAvailable and SwapFree are both low."""
    return with_killer(sc, "earlyoom", params)


@policy("systemd_oomd",
        setting(SystemdOomdSpec, "default_memory_pressure_limit", "float", "full avg10 %"),
        setting(SystemdOomdSpec, "default_memory_pressure_duration", "duration", "seconds"),
        setting(SystemdOomdSpec, "swap_used_limit", "float", "swap used %"),
        target=None, example="systemd_oomd")
def systemd_oomd(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """systemd-oomd: kill the cgroup reclaiming most after sustained full pressure, or at high
    swap use."""
    return with_killer(sc, "systemd_oomd", params)


@policy("oomd",
        setting(OomdSpec, "threshold", "float", "pressure %"),
        setting(OomdSpec, "duration", "duration", "seconds"),
        target=None, example="oomd")
def oomd(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """Meta's oomd (desktop rules): sustained pressure with reclaim -> kill by size or growth."""
    return with_killer(sc, "oomd", params)
