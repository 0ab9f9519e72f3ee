"""The test harness: a real local control plane, the operator as a process, helm, and object helpers.

Tests, benchmarks and the demo import it explicitly (`from support.localcluster import LocalCluster`),
with `tests/` on the import path.
"""
