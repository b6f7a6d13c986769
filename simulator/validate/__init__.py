"""Experiments against the real kernel: memory cgroups we create, real processes, timeouts."""
