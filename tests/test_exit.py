"""A task's exit: its fds are closed in fd order, so evictions are logged in a fixed order."""

from __future__ import annotations

from pathlib import Path

from simulator.scenario import load_scenario
from simulator.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent


def test_exit_closes_fds_in_the_order_they_were_opened():
    """The sender of row07 created `small` then `big` and holds both to its exit: the files
    are evicted in that order (`close_files` walks the fd table upward), whatever the string
    hash seed of this Python process."""
    r = simulate(load_scenario(ROOT / "scenarios" / "row07-map-populate.yaml"))
    evicted = [e[7] for e in r.events if e[1] == "shmem_evict_inode"]
    assert evicted[-2:] == ["memfd:small", "memfd:big"]
