"""The swap device's kind: zram (a bare size) or a disk, whose pages take a device's time.

The kind changes how long swap-out and swap-in take, never what is swapped: the same run on a
disk device swaps the same pages and ends the same way, later by the pages' read and write
times (docs/model.md, "Swap devices").
"""

import pytest

from simulator.plan import DISK_SWAP_READ, DISK_SWAP_WRITE, resolve
from simulator.scenario_errors import ScenarioError
from simulator.simulation import simulate

WRITER = """
name: t
duration: 60s
machine: {{nodes: [{{memory: 1GiB}}], swap: {swap}}}
cgroups: {{/app: {{memory.max: 8MiB}}}}
tasks:
  - name: rw
    cgroup: /app
    ops:
      - memfd_create: {{fd: buf}}
      - ftruncate: {{fd: buf, size: 16MiB}}
      - write: {{fd: buf, length: 16MiB}}
      - read: {{fd: buf}}
"""


def both_engines(sc):
    r = simulate(sc, reference=False)
    r2 = simulate(sc, reference=True)
    assert r.counters == r2.counters
    assert {n: (o.outcome, o.time) for n, o in r.tasks.items()} == \
        {n: (o.outcome, o.time) for n, o in r2.tasks.items()}
    return r


def test_a_bare_size_is_zram(scenario):
    sc = scenario(WRITER.format(swap="64MiB"))
    plan = resolve(sc)
    assert plan.swap_kind == "zram" and "swapin" not in plan.costs
    assert simulate(sc).counters["swap"]["kind"] == "zram"


def test_a_disk_swaps_the_same_pages_only_slower(scenario):
    """Dirty shmem written through an 8 MiB memcg goes to swap and comes back on read(2) on
    both kinds alike; on a disk each page written out and read back costs the device's time."""
    zram = both_engines(scenario(WRITER.format(swap="64MiB")))
    disk = both_engines(scenario(WRITER.format(swap="{size: 64MiB, kind: disk}")))
    assert disk.counters["swap"]["kind"] == "disk"
    for key in ("pswpin", "pswpout"):
        assert disk.counters["swap"][key] == zram.counters["swap"][key] > 1000
    assert disk.tasks["rw"].outcome == zram.tasks["rw"].outcome == "ok"
    sw = zram.counters["swap"]
    slower = sw["pswpin"] * (DISK_SWAP_READ - 4e-6) + sw["pswpout"] * (DISK_SWAP_WRITE - 4e-6)
    assert disk.tasks["rw"].time - zram.tasks["rw"].time == pytest.approx(slower, rel=0.05)


def test_the_devices_own_times_win(scenario):
    """`swap.read`/`swap.write` over `costs.swapin`/`pageout`, over the disk's defaults."""
    sc = scenario(WRITER.format(swap="{size: 64MiB, kind: disk, read: 1ms}"))
    assert resolve(sc).costs["swapin"] == 1e-3 and resolve(sc).costs["pageout"] == DISK_SWAP_WRITE
    sc = scenario(WRITER.format(swap="{size: 64MiB, kind: disk}").replace(
        "machine: {", "machine: {costs: {swapin: 7us}, "))
    assert resolve(sc).costs["swapin"] == 7e-6


def test_an_unknown_kind_is_refused_at_its_key(scenario):
    with pytest.raises(ScenarioError) as e:
        scenario(WRITER.format(swap="{size: 64MiB, kind: nvme}"))
    assert "machine.swap" in str(e.value) and "kind" in str(e.value)
