"""Raft consensus as a synchronous core with no I/O (see `core` for the contract).

    config.RaftConfig       settings and their defaults
    core.RaftCore           the node: tick/step/propose/read_index/... in, ready()/advance() out
    ready                   Ready, SoftState, ReadState, LogPosition, Role, Status
    messages                the wire messages (codec tags 1010-1099)
    types                   Entry, HardState, ConfState, ConfChange, Snapshot (shared with storage)
    errors                  NotLeader, RequestDropped, ConfChangeRejected
    membership              one-server-at-a-time configuration changes
    describe                one-line text for entries, messages and Readies

Nothing is re-exported here: `raftcluster.storage.interface` imports `types`, and this
package must stay importable from it without pulling in the core.
"""
