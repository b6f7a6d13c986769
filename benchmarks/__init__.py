"""Benchmarks of the bulk engine (`make bench`): throughput against the real kernel and the
per-page reference model, scale to 1 TiB, and 10,000 tasks on an 8-node machine."""
