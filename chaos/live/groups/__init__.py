"""Live chaos for the cluster service (`raftcluster chaos live --workload groups`):
real nodes run groups whose resource is the probe (`probe.py`, a TCP server that proves
by a lock whether two instances of a group were ever alive at once), under partitions,
kill -9 and pauses; `judge.py` reads the probes' log and the end state (docs/chaos-live.md).
"""
