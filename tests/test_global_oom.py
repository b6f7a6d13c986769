"""The global OOM killer: who dies when a node runs out, and what killing frees."""

from simulator.simulation import simulate

MACHINE = """
name: g
duration: 10s
machine: {{nodes: [{{memory: 256MiB}}]}}
sysctl: {{panic_on_oom: {panic}, oom_kill_allocating_task: {allocating}}}
tasks:
  - name: sender
    ops:
      - memfd_create: {{fd: buf, flags: [allow_sealing]}}
      - ftruncate: {{fd: buf, size: 512MiB}}
      - add_seals: {{fd: buf, seals: [write, shrink, grow]}}
      - mmap: {{fd: buf, map: s, prot: [read], flags: [shared], length: {sender_map}}}
      - touch: {{map: s, access: read}}
      - sleep: 5s
  - name: hog
    ops:
      - alloc_anon: {{size: {hog}}}
      - sleep: 5s
  - name: reader
    start: 500ms
    ops:
      - mmap: {{fd: buf, map: m, prot: [read], flags: [shared]}}
      - touch: {{map: m, access: read, range: [{reader_from}, 100%]}}
"""


def run(scenario, panic=0, allocating=0, sender_map="100MiB", hog="20MiB", reader_from="0"):
    return simulate(scenario(MACHINE.format(panic=panic, allocating=allocating,
                                            sender_map=sender_map, hog=hog,
                                            reader_from=reader_from)))


def test_killing_a_holder_of_a_shared_memfd_frees_none_of_its_pages(scenario):
    """The sender maps 200 MiB of the memfd and is the first victim, but its pages stay (the
    reader still holds the file), so the reader, faulting in the rest, is killed next."""
    r = run(scenario, sender_map="200MiB", reader_from="200MiB")
    assert [k["victim"] for k in r.oom_kills] == ["sender", "reader"]
    assert all(k["constraint"] == "global" for k in r.oom_kills)
    assert r.oom_kills[0]["line"].startswith("Out of memory: Killed process")
    assert r.tasks["hog"].outcome == "ok"


def test_the_task_with_the_most_pages_is_chosen(scenario):
    """With a small sender map, the reader holds the most mapped pages when memory runs out."""
    r = run(scenario)
    assert [k["victim"] for k in r.oom_kills] == ["reader"]


def test_oom_kill_allocating_task_kills_the_faulting_task(scenario):
    """vm.oom_kill_allocating_task=1: the allocating reader dies even when another scores more."""
    r = run(scenario, allocating=1, sender_map="200MiB", reader_from="200MiB")
    assert [k["victim"] for k in r.oom_kills] == ["reader"]
    assert r.tasks["sender"].outcome == "ok"


def test_panic_on_oom(scenario):
    """vm.panic_on_oom=1: an unconstrained OOM panics the machine; every task ends in panic."""
    r = run(scenario, panic=1)
    assert r.panic and "panic_on_oom" in r.panic
    assert {o.outcome for o in r.tasks.values() if o.outcome != "ok"} == {"panic"}
