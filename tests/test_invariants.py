"""Properties that hold after any run: pages conserved, counters in range, memory freed once."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.mm.debug import unbooked_slack
from simulator.scenario import parse_scenario
from simulator.simulation import Run

OPS = [
    "mmap: {{fd: f{i}, map: m{i}{t}, prot: [read], flags: [shared]}}",
    "touch: {{map: m{i}{t}, access: read, pattern: {pattern}}}",
    "mlock: {{map: m{i}{t}}}",
    "madvise: {{map: m{i}{t}, advice: populate_read}}",
    "fallocate: {{fd: f{i}, length: {len}KiB}}",
    "write: {{fd: f{i}, length: {len}KiB}}",
    "read: {{fd: f{i}}}",
    "alloc_anon: {{size: {len}KiB}}",
    "fallocate: {{fd: f{i}, length: {len}KiB, flags: [punch_hole, keep_size]}}",
    "ftruncate: {{fd: f{i}, size: {len}KiB}}",
    "sleep: {len}us",
]

task_ops = st.lists(st.tuples(st.integers(0, len(OPS) - 1), st.integers(0, 1),
                              st.integers(4, 3000), st.sampled_from(["sequential", "random"])),
                    min_size=1, max_size=6)


def build(files, tasks, limits, kernel, mode, seals, hang=""):
    """The scenario; `hang` makes tasks in /a/b hang at its limit instead of being killed
    (v1 oom_kill_disable, or no victim at oom_score_adj -1000)."""
    lines = [
        "name: prop", "duration: 5s", f'kernel: "{kernel}"',
        "machine: {nodes: [{memory: 16MiB}]}",
        f"sysctl: {{overcommit_memory: {mode}, overcommit_ratio: 30}}",
        "mounts: [{path: /t, size: 2MiB}]",
        "cgroups:",
        f"  /a: {{memory.max: {limits[0]}KiB}}",
        f"  /a/b: {{memory.max: {min(limits[1], 1000) if hang else limits[1]}KiB"
        + (", memory.oom_kill_disable: 1}" if hang == "oom_kill_disable" else "}"),
        "tasks:",
        "  - name: maker",
        "    ops:",
    ]
    for i, (tmpfs, size) in enumerate(files):
        if tmpfs:
            lines.append(f"      - open: {{fd: f{i}, path: /t/f{i}}}")
        else:
            lines.append(f"      - memfd_create: {{fd: f{i}, flags: [allow_sealing]}}")
        lines.append(f"      - ftruncate: {{fd: f{i}, size: {size}KiB}}")
        if seals and not tmpfs:
            lines.append(f"      - add_seals: {{fd: f{i}, seals: [grow, shrink]}}")
    lines.append("      - sleep: 1s")
    for t, ops in enumerate(tasks):
        lines += [f"  - name: t{t}", f"    cgroup: {['/a', '/a/b'][t % 2]}",
                  f"    start: {t + 1}ms", "    capabilities: [ipc_lock]"]
        if hang == "adj" and t % 2:
            lines.append("    oom_score_adj: -1000")
        lines.append("    ops:")
        mapped: set[int] = set()
        for k, i, ln, pat in ops:
            i = min(i, len(files) - 1)
            if OPS[k].startswith(("touch", "mlock", "madvise")) and i not in mapped:
                continue
            if OPS[k].startswith("mmap"):
                if i in mapped:
                    continue
                mapped.add(i)
            lines.append("      - " + OPS[k].format(i=i, t=t, len=ln, pattern=pat))
        if lines[-1].endswith("ops:"):
            lines.append("      - sleep: 1ms")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.tuples(st.booleans(), st.integers(8, 6000)), min_size=1, max_size=2),
    tasks=st.lists(task_ops, min_size=1, max_size=3),
    limits=st.tuples(st.integers(400, 12000), st.integers(300, 12000)),
    kernel=st.sampled_from(["6.18", "3.15"]),
    mode=st.sampled_from([0, 1, 2]),
    seals=st.booleans(),
    hang=st.sampled_from(["", "oom_kill_disable", "adj"]),
)
def test_memory_is_conserved_and_freed_once(files, tasks, limits, kernel, mode, seals, hang):
    """After any run: per-node pages add up, no counter is negative or over its limit (the run
    checks that, and with CONFIG_DEBUG_VM after every exit and reaping too), and only the
    pages of files still linked or held and of tasks still hung are left, charged exactly once
    each."""
    run = Run(parse_scenario(build(files, tasks, limits, kernel, mode, seals, hang)))
    run.m.debug_vm = True
    run.run()
    m = run.m
    live = [t for t in m.tasks if not t.exited]
    # A task asleep in the kernel at the end may hold pages it allocated (and charged, and
    # committed) but has not yet booked.
    slack = unbooked_slack(m)
    # Files not evicted (linked, or held by a hung task) keep their pages; a memcg keeps the
    # slab pages of the xarray nodes charged to it and of its byte stock (the run checked they
    # add up); a hung task keeps its private pages, page tables and kernel pages.
    inodes = list({id(i): i for i in m.files.values()}.values())
    kept = [i for i in inodes if not i.evicted]
    slab = sum(c.stat["slab"] for c in m.memcgs.values())
    held = sum(sum(t.mm.anon_nodes.values()) + sum(t.mm.pt_nodes.values())
               + sum(t.mm.kernel_nodes.values()) for t in live)
    charged = sum(sum(t.mm.anon_nodes.values()) + m.kmem_charge(
        sum(t.mm.pt_nodes.values()) + sum(t.mm.kernel_nodes.values())) for t in live)
    files_left = sum(len(i.pages) for i in kept)
    assert 0 <= sum(n.managed - n.free for n in m.nodes) - (files_left + slab + held) <= slack
    assert 0 <= m.root.usage - (files_left + slab + charged) <= slack
    noreserve = sum(len(i.pages) for i in kept if i.noreserve)
    committed = sum(t.mm.committed for t in live)
    assert 0 <= m.overcommit.committed_as - (noreserve + committed) <= slack
    for sb in m.mounts.values():
        used = sum(len(i.pages) for i in kept if i.sb is sb)
        assert 0 <= sb.used_blocks - used <= slack
