"""One scenario on the real kernel: our cgroups and mounts, a C worker per task, the outcomes.

The run, in order: a top memory cgroup of our own (the scenario's `/`) with a child for each
scenario cgroup, limits written before anyone enters; the scenario's tmpfs mounts under a
temporary directory; one worker per task, each joining its cgroup before its image is built and
then waiting; then the clock starts, tasks are released at their start times or when the task
they start after has run all its ops, fds travel between tasks through this process
(SCM_RIGHTS), and every worker's end is read as an outcome. Everything created is removed in
reverse order, also after an error, a timeout or Ctrl-C.

Simplifications:
    This process keeps a copy of every fd a task created until no task that names it is left,
    so a file can live a little longer than in the simulator (which frees it with its last
    holder). An fd asked for before its creator has made it is waited for `FD_GRACE` seconds,
    as long as the creator is still running (real start times jitter by a millisecond or so);
    with `barriers` (order.py), a task is released at its start time only once the others have
    got as far as they had in the simulated run.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..outcome import TaskOutcome
from ..scenario import Scenario
from ..scenario_model import swap_size
from ..units import parse_bytes, parse_seconds
from ..validify import machine_bytes
from .cgroup import MemoryCgroup, scenario_swap_files
from .diskfiles import DiskMount
from .host import Host
from .mounts import TmpfsMount
from .order import BARRIER_WAIT
from .process import Worker, errno_name, proc_footprint, remove_shm, spawn_worker
from .program import Slots, TaskProgram, fd_creators, fd_users, scenario_programs

MAX_REAL_SECONDS = 30.0  # a run never lasts longer than this (plus SLACK)
SLACK = 0.5  # seconds after the scenario's duration before still-running tasks count as hung
READY_TIMEOUT = 10.0
EXIT_TIMEOUT = 5.0
FD_GRACE = 0.5
PAGE_TRACKED = ("touch", "alloc_anon", "read", "write")


class KernelRunError(RuntimeError):
    """The run could not be carried out (a worker failed to start, a mount failed, ...)."""


class Aborted(Exception):  # noqa: N818 - what happened
    """The run was stopped from outside (Ctrl-C, SIGTERM); everything was cleaned up."""


@dataclass
class KernelResult:
    """What the real kernel did with a scenario.

    Attributes:
        tasks: each task's outcome (the simulator's TaskOutcome, so both compare field by field).
        op_times: seconds each completed op took, per task and op index.
        oom_kills: OOM kills counted in each scenario cgroup itself (not its children).
        start_usage: bytes charged to each scenario cgroup once every worker was ready,
            before the first op (with the per-CPU charge stock: a rough figure).
        start_footprint: each task's RssAnon and VmPTE (KiB) at the same moment: the real
            per-task footprint (the kernel stack adds 16 KiB of kernel memory).
    """

    scenario: str
    tasks: dict[str, TaskOutcome]
    op_times: dict[str, dict[int, float]] = field(default_factory=dict)
    oom_kills: dict[str, int] = field(default_factory=dict)
    start_usage: dict[str, int] = field(default_factory=dict)
    start_footprint: dict[str, dict[str, int]] = field(default_factory=dict)
    elapsed: float = 0.0


def safety_cap(host: Host) -> int:
    """memory.max of our top cgroup: half the free memory (a scenario's `/` is never more)."""
    return host.mem_available // 2 // host.page_size * host.page_size


class KernelRun:
    """Run one scenario on this machine's kernel."""

    def __init__(self, sc: Scenario, host: Host, worker_exe: Path,
                 abort: threading.Event | None = None,
                 barriers: dict[str, dict[str, int]] | None = None) -> None:
        self.sc, self.host, self.exe = sc, host, worker_exe
        self.barriers = barriers or {}
        self.abort = abort or threading.Event()
        self.ps = host.page_size
        self.workers: dict[str, Worker] = {}
        self.cgroups: dict[str, MemoryCgroup] = {}  # scenario path -> our cgroup
        self.homes: dict[str, MemoryCgroup] = {}  # scenario path -> where its tasks live
        self.fds: dict[int, int] = {}
        self.shmids: dict[int, int] = {}  # slot -> SysV segment id
        self.all_shmids: set[int] = set()
        self.requests: list[tuple[Worker, int, float]] = []
        self.sel = selectors.DefaultSelector()
        self.t0 = 0.0
        self.slots = Slots()

    # -- setting up ----------------------------------------------------------------------------
    def make_cgroups(self, stack: ExitStack) -> None:
        """Our top cgroup (the scenario's `/`) and one child per scenario cgroup."""
        swap = parse_bytes(swap_size(self.sc.machine.swap)) > 0
        top = MemoryCgroup(safety_cap(self.host), controller=self.host.controller, swap=swap)
        stack.callback(top.remove)
        self.cgroups["/"] = top
        ram = machine_bytes(self.sc)

        def ensure(path: str) -> MemoryCgroup:
            if path in self.cgroups:
                return self.cgroups[path]
            parent = ensure(path.rsplit("/", 1)[0] or "/")
            spec = self.sc.cgroups.get(path)
            limit = None
            disable: bool | None = None  # not written: inherited from the parent (v1)
            group = False
            if spec is not None:
                limit = None if spec.memory_max == "max" else parse_bytes(spec.memory_max, ram)
                if "memory_oom_kill_disable" in spec.model_fields_set:
                    disable = spec.memory_oom_kill_disable
                group = spec.memory_oom_group
            cg = parent.child(path.rsplit("/", 1)[1], limit, oom_kill_disable=disable,
                              oom_group=group, swap=swap,
                              swap_files=scenario_swap_files(spec, top.ctl.version, ram) if spec else None)
            self.cgroups[path] = cg
            return cg

        for path in sorted(self.sc.cgroups, key=lambda p: p.count("/")):
            ensure(path)
        self.homes = dict(self.cgroups)
        if top.ctl.version == 2 and any(t.cgroup == "/" for t in self.sc.tasks):
            # v2 has no processes in a cgroup whose children use the controller: the tasks of
            # the scenario's `/` live in a leaf of their own, without a limit.
            self.homes["/"] = top.child("oomsim-root-tasks", None, swap=swap)

    def make_mounts(self, stack: ExitStack, root: Path) -> None:
        """Each scenario mount below `root`: a private tmpfs (half the machine by default), or for
        `type: disk` a directory of real files written to disk and dropped from the page cache."""
        ram = machine_bytes(self.sc)
        for mnt in sorted(self.sc.mounts, key=lambda m: m.path.count("/")):
            if mnt.type == "disk":  # real files on the disk below root, none of them cached
                d = DiskMount(root / mnt.path.lstrip("/"),
                              {n: parse_bytes(sz, ram) for n, sz in mnt.files.items()})
                stack.callback(d.remove)
                d.make()
                continue
            size = ram // 2 if mnt.size is None else parse_bytes(mnt.size, ram)
            size = -(-size // self.ps) * self.ps
            m = TmpfsMount(root / mnt.path.lstrip("/"), size)
            stack.callback(m.umount)
            m.mount()

    def spawn(self, prog: TaskProgram) -> Worker:
        """Start a task's worker and listen to it."""
        w = spawn_worker(self.exe, prog, self.homes[prog.cgroup], self.ps)
        self.workers[prog.name] = w
        self.sel.register(w.sock, selectors.EVENT_READ, w)
        return w

    def wait_ready(self) -> None:
        """Every worker has said R (it is in its cgroup, set up, and waiting)."""
        until = time.monotonic() + READY_TIMEOUT
        while not all(w.ready for w in self.workers.values()):
            self.check_abort()
            for w in self.workers.values():
                if w.ended is not None:
                    raise KernelRunError(f"worker for task {w.prog.name} failed to start "
                                         f"(exit status {w.proc.returncode}): {w.stderr_text()}")
            if time.monotonic() > until:
                raise KernelRunError(f"workers not ready after {READY_TIMEOUT:.0f} s")
            for key, _ in self.sel.select(0.05):
                self.receive(key.data)

    # -- the event loop ------------------------------------------------------------------------
    def check_abort(self) -> None:
        """Stop at once when asked to (Ctrl-C)."""
        if self.abort.is_set():
            raise Aborted()

    def release(self, w: Worker) -> None:
        """Let a worker run its ops."""
        w.released = time.monotonic()
        self.send(w, b"G")

    def send(self, w: Worker, data: bytes, fds: list[int] | None = None) -> None:
        """A message to a worker (lost if it has died meanwhile)."""
        try:
            if fds:
                socket.send_fds(w.sock, [data], fds)
            else:
                w.sock.send(data)
        except OSError:
            pass

    def receive(self, w: Worker) -> None:
        """One message from a worker, or its end."""
        try:
            data, fds, _, _ = socket.recv_fds(w.sock, 256, 4)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            self.end(w)
            return
        now = time.monotonic()
        kind, *args = data.decode().split()
        nums = [int(x) for x in args]
        if kind == "R":
            w.ready = True
        elif kind == "O":
            w.op = nums[0]
            if w.op in w.prog.populating:
                w.hole_before = self.first_hole(w)
        elif kind == "T":
            w.op_times[nums[0]] = nums[1] / 1e9
        elif kind == "E":
            w.error = (nums[0], nums[1], now)
        elif kind == "F":
            old = self.fds.pop(nums[0], None)
            if old is not None:
                os.close(old)
            self.fds[nums[0]] = fds.pop(0)
        elif kind == "S":
            self.shmids[nums[0]] = nums[1]
            self.all_shmids.add(nums[1])
        elif kind == "N":
            self.requests.append((w, nums[0], now + FD_GRACE))
        elif kind == "D":
            self.ops_done(w, now)
        for fd in fds:
            os.close(fd)

    def ops_done(self, w: Worker, now: float) -> None:
        """A worker has run all its ops: the tasks that start after it go."""
        w.done = now
        for other in self.workers.values():
            if other.released is None and other.prog.start == w.prog.name:
                self.release(other)

    def end(self, w: Worker) -> None:
        """A worker has gone: its exit status, and how far the kernel got populating for it."""
        self.sel.unregister(w.sock)
        w.sock.close()
        try:
            w.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait(EXIT_TIMEOUT)
        w.ended = time.monotonic()
        self.all_shmids.update(w.shm_ids())
        op, _, err, done = w.read_progress()
        if op >= 0:
            w.op = op  # the page is the record; an "O" message may have been lost
        if err and w.error is None:
            w.error = (op, err, w.ended)  # its "E" message was lost
        if done and w.done is None:
            self.ops_done(w, w.ended)  # its "D" message was lost
        w.populated = self.populated_page(w)
        self.close_unused_fds()

    def first_hole(self, w: Worker) -> int | None:
        """The first page of the map of the worker's populating op that is still a hole."""
        info = w.prog.populating.get(w.op) if w.op is not None else None
        fd = self.fds.get(self.slots.fd(info.fd)) if info is not None else None
        if info is None or fd is None:
            return None
        try:
            return (os.lseek(fd, info.pgoff, os.SEEK_HOLE) - info.pgoff) // self.ps
        except OSError:
            return None

    def populated_page(self, w: Worker) -> int | None:
        """For a populating op that did not finish: how far the kernel got (the map's first
        hole), if it got anywhere (an op refused before populating has no page)."""
        if w.done is not None:
            return None
        hole = self.first_hole(w)
        return None if hole is None or hole == w.hole_before else hole

    def close_unused_fds(self) -> None:
        """Drop our copy of an fd once every task that names it has ended."""
        for slot, users in self.users.items():
            if slot in self.fds and all(self.workers[u].ended is not None for u in users):
                os.close(self.fds.pop(slot))

    def creator_running(self, slot: int) -> bool:
        """A running task has yet to reach the op that creates this fd."""
        for name, index in self.creators.get(slot, []):
            w = self.workers[name]
            if w.released is not None and w.ended is None and w.error is None and (
                    w.op is None or w.op <= index):
                return True
        return False

    def answer_requests(self, now: float) -> None:
        """Send each asked-for fd once we have it; "X" when it will not come."""
        for req in list(self.requests):
            w, slot, until = req
            if w.ended is not None:
                self.requests.remove(req)
            elif slot in self.fds:
                self.send(w, f"F {slot}".encode(), [self.fds[slot]])
                self.requests.remove(req)
            elif slot in self.shmids:
                self.send(w, f"S {slot} {self.shmids[slot]}".encode())
                self.requests.remove(req)
            elif now >= until or not self.creator_running(slot):
                self.send(w, f"X {slot}".encode())
                self.requests.remove(req)

    def can_start(self, w: Worker, seen: frozenset[str] = frozenset()) -> bool:
        """Whether an unreleased worker may still be released."""
        if w.released is not None or not isinstance(w.prog.start, str):
            return True
        dep = self.workers[w.prog.start]
        if dep.done is not None:
            return True
        if dep.ended is not None or dep.prog.name in seen:
            return False
        return self.can_start(dep, seen | {w.prog.name})

    def barrier_met(self, w: Worker, now: float) -> bool:
        """Every other task has begun the op it was in at w's start in the simulation."""
        if now >= self.t0 + float(w.prog.start) + BARRIER_WAIT:
            return True
        for name, need in self.barriers.get(w.prog.name, {}).items():
            other = self.workers[name]
            if other.ended is None and other.read_progress()[0] < need:
                return False
        return True

    def loop(self, deadline: float) -> None:
        """Release, relay and listen until every worker has ended or the deadline passes."""
        while any(w.ended is None for w in self.workers.values()):
            self.check_abort()
            now = time.monotonic()
            if now >= deadline:
                return
            waiting = False
            for w in self.workers.values():
                if w.released is None and isinstance(w.prog.start, float) and \
                        now >= self.t0 + w.prog.start:
                    if self.barrier_met(w, now):
                        self.release(w)
                    else:
                        waiting = True
            self.answer_requests(now)
            live = [w for w in self.workers.values() if w.ended is None]
            if all(w.released is None and not self.can_start(w) for w in live):
                return  # only tasks whose start can never come are left: they hang
            wake = [deadline] + [u for _, _, u in self.requests] + [
                self.t0 + w.prog.start for w in live
                if w.released is None and isinstance(w.prog.start, float)]
            timeout = min(0.001 if waiting else 0.05, max(0.0, min(wake) - now))
            for key, _ in self.sel.select(timeout):
                self.receive(key.data)

    def stop_all(self) -> None:
        """Kill every worker still running (they are hung) and wait for each."""
        for w in self.workers.values():
            if w.ended is None:
                w.killed_by_us = True
                try:
                    w.proc.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for w in self.workers.values():
            if w.ended is None:
                self.end(w)

    def cleanup(self) -> None:
        """Workers killed and reaped, our fds and progress pages closed."""
        for w in self.workers.values():
            if w.proc.poll() is None:
                w.proc.kill()
                try:
                    w.proc.wait(EXIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            try:
                self.all_shmids.update(w.shm_ids())
            except ValueError:
                pass
            for closing in (w.sock.close, w.progress.close, w.stderr.close):
                try:
                    closing()
                except (OSError, ValueError, BufferError):
                    pass
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        for shmid in self.all_shmids:
            remove_shm(shmid)
        self.sel.close()

    # -- outcomes ------------------------------------------------------------------------------
    def local_oom_kills(self) -> dict[str, int]:
        """OOM kills in each scenario cgroup itself, not counting its children."""
        return {p: cg.oom_kills(local=True) for p, cg in self.homes.items()}

    def outcome(self, w: Worker, oom_kills: dict[str, int], end: float) -> TaskOutcome:
        """What happened to one task, in the simulator's terms."""
        names = w.prog.op_names
        last_op, page, _, _ = w.read_progress()
        op = last_op if last_op >= 0 else w.op
        name = names[op] if op is not None else None
        if name in PAGE_TRACKED:
            real_page = page if page >= 0 else None
        else:
            real_page = w.populated
        ended = (w.ended or end) - self.t0
        if w.error is not None:
            i, err, when = w.error
            return TaskOutcome("error", errno_name(err), i, names[i], real_page,
                               when - self.t0)
        if w.done is not None and w.proc.returncode == 0:
            return TaskOutcome("ok", time=w.done - self.t0)
        if w.killed_by_us:
            if w.released is None:
                return TaskOutcome("hung", time=end - self.t0,
                                   reason=f"never started: waiting for {w.prog.start}")
            return TaskOutcome("hung", None, op, name, real_page, end - self.t0,
                               f"still in {name or 'its start'} when the run ended")
        rc = w.proc.returncode
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc)
            if sig == signal.SIGKILL:
                kind = "oom_killed" if oom_kills.get(w.cgroup, 0) > 0 else "killed"
                return TaskOutcome(kind, None, op, name, real_page, ended)
            kind = {signal.SIGBUS: "sigbus", signal.SIGSEGV: "sigsegv"}.get(sig, "killed")
            return TaskOutcome(kind, None, op, name, real_page, ended, sig.name)
        return TaskOutcome("failed", None, op, name, real_page, ended,
                           f"worker exit status {rc}: {w.stderr_text()}")

    # -- the whole run -------------------------------------------------------------------------
    def run(self) -> KernelResult:
        """Set up, run, read the outcomes, and remove everything again."""
        sc = self.sc
        with ExitStack() as stack:
            root = Path(tempfile.mkdtemp(prefix="oomsim-"))
            stack.callback(shutil.rmtree, root, True)
            self.make_cgroups(stack)
            self.make_mounts(stack, root)
            progs, self.slots = scenario_programs(
                sc, root, {p: cg.path for p, cg in self.cgroups.items()})
            self.creators = fd_creators(sc, self.slots)
            self.users = fd_users(sc, self.slots)
            stack.callback(self.cleanup)
            for prog in progs:
                self.spawn(prog)
            self.wait_ready()
            start_usage = {p: cg.usage_bytes() for p, cg in self.cgroups.items()}
            start_footprint = {n: proc_footprint(w.proc.pid) for n, w in self.workers.items()}
            self.t0 = time.monotonic()
            duration = parse_seconds(sc.duration)
            end = self.t0 + min(duration, MAX_REAL_SECONDS) + SLACK
            self.loop(end)
            end = min(time.monotonic(), end)
            self.stop_all()
            kills = self.local_oom_kills()
            return KernelResult(
                scenario=sc.name,
                tasks={n: self.outcome(w, kills, end) for n, w in self.workers.items()},
                op_times={n: w.op_times for n, w in self.workers.items()},
                oom_kills=kills, start_usage=start_usage, start_footprint=start_footprint,
                elapsed=time.monotonic() - self.t0,
            )
        raise AssertionError("unreachable")  # pragma: no cover


def run_on_kernel(sc: Scenario, host: Host, worker_exe: Path,
                  abort: threading.Event | None = None,
                  barriers: dict[str, dict[str, int]] | None = None) -> KernelResult:
    """Run a scenario on this machine's kernel (see KernelRun; barriers: order.py)."""
    return KernelRun(sc, host, worker_exe, abort, barriers).run()


__all__ = ["Aborted", "KernelResult", "KernelRun", "KernelRunError", "run_on_kernel"]
