"""Userspace OOM killers: earlyoom, systemd-oomd and Meta's oomd as SimPy processes.

Each polls the simulated machine at its own period, as the real daemon reads /proc/meminfo,
memory.pressure and memory.stat, and kills through the same signal and exit path as the
kernel's OOM killer (see docs/userspace-oom.md). `start_userspace_oom` (run.py) starts the
ones a scenario's `userspace_oom` key names.
"""
