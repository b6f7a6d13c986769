"""The core scenario (scenarios/sealed-holes-memcg.yaml) scaled: a reader touches a sealed
memfd of holes inside a memcg; the file size, the limit and the machine are parameters."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from simulator.scenario import Scenario
from simulator.validify import validify

CORE = Path(__file__).resolve().parent.parent / "scenarios" / "sealed-holes-memcg.yaml"


def core_dict() -> dict[str, Any]:
    """The core scenario as plain data."""
    data = YAML(typ="safe").load(CORE.read_text())
    return copy.deepcopy(data)


def scaled_core(file_size: str, limit: str, machine: str = "4GiB", swap: str = "0") -> Scenario:
    """The core scenario with the memfd `file_size`, /app's memory.max `limit`, one node of
    `machine`, and the reader's touch left as it is (a sequential read of the whole map).

    The duration is long enough for a 1 TiB scan (2.6 us a page: about 12 simulated minutes).
    """
    d = core_dict()
    d["duration"] = "2h"
    d["machine"]["nodes"] = [{"memory": machine}]
    d["machine"]["swap"] = swap
    d["cgroups"]["/app"]["memory.max"] = limit
    d.pop("expect", None)
    for task in d["tasks"]:
        for op in task["ops"]:
            if "ftruncate" in op:
                op["ftruncate"]["size"] = file_size
    sc = Scenario.model_validate(d)
    validify(sc)
    return sc


def reader_pages(result: Any) -> int:
    """Pages the reader instantiated: /app's peak shmem."""
    return int(result.counters["memcg"]["/app"]["peak_shmem"])
