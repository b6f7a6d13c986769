"""Sender-side policies: what the program that creates and seals the memfd can do.

`fallocate_before_seal` instantiates every page of the file (`shmem_fallocate`) before
F_ADD_SEALS: the file handed over has no holes, so a reader's faults only map pages, and the
memory is charged to the sender, which fails (ENOSPC, ENOMEM, or an OOM kill) before it seals.
"""

from __future__ import annotations

from typing import Any

from ..scenario_model import Scenario
from .registry import policy
from .rewrite import WRITE_SEALS, dump, load, op_of, rewrite_ops, sealer_tasks


@policy("fallocate_before_seal",
        target="sealers (tasks that seal a file against writes)")
def fallocate_before_seal(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """fallocate the whole file right before sealing it against writes: no holes are passed on."""
    data = dump(sc)
    for task in sealer_tasks(data, target, "fallocate_before_seal"):
        def at(i: int, raw: Any) -> list[Any] | None:
            name, a = op_of(raw)
            if name == "add_seals" and WRITE_SEALS & set(a.get("seals", [])):
                return [{"fallocate": {"fd": a["fd"], "offset": 0, "length": "100%"}}, raw]
            return None

        rewrite_ops(task, at)
    return load(data, sc, "fallocate_before_seal")
