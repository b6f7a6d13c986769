"""Kernel what-ifs: behaviour no kernel has, switched on by a policy (`what_if` of the
scenario; simulator/mm/profiles.py `WhatIf`).

`zero_page` maps ZERO_PAGE for read faults on holes of write-sealed files (proposed in the
2014 discussion, never merged); `charge_at_seal` makes `memfd_add_seals` with F_SEAL_WRITE or
F_SEAL_FUTURE_WRITE instantiate and charge every hole at once, as `shmem_fallocate` would, so
that the seal call fails (ENOMEM, ENOSPC) instead of a later read.
"""

from __future__ import annotations

from ..scenario_model import Scenario
from .registry import policy
from .rewrite import dump, load


def _what_if(sc: Scenario, key: str, policy_name: str) -> Scenario:
    data = dump(sc)
    data["what_if"] = {**data.get("what_if", {}), key: True}
    return load(data, sc, policy_name)


@policy("zero_page", target=None)
def zero_page(sc: Scenario) -> Scenario:
    """The kernel change proposed in 2014: ZERO_PAGE for read faults on write-sealed holes."""
    return _what_if(sc, "zero_page_sealed_holes", "zero_page")


@policy("charge_at_seal", target=None)
def charge_at_seal(sc: Scenario) -> Scenario:
    """A kernel what-if: sealing against writes instantiates and charges every hole, so the
    seal fails (ENOMEM/ENOSPC) instead of a later read."""
    return _what_if(sc, "charge_at_seal", "charge_at_seal")
