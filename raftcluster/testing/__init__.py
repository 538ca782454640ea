"""Hypothesis tools for testing a part of the replicated state (docs/your-state-machine.md).

Needs Hypothesis (the `test` extra). Strategies for a part's messages, from their attrs
field types (`messages`, `commands_of`, `queries_of`), and a ready-made stateful test,
`ReplicasMachine`: replicas fed one log through `execute` and `apply(bytes)`, lagging
replicas that catch up by the log or by a snapshot, every part's `check_invariants()`
after every apply, all against the model you give. To run a simulator seed with your
part, workload and model inside a Hypothesis test, see `chaos.testing`.
"""

from raftcluster.testing.replicas import Lagging, PartModel, ReplicasMachine, same_result
from raftcluster.testing.strategies import commands as commands_of
from raftcluster.testing.strategies import for_type, messages
from raftcluster.testing.strategies import queries as queries_of

__all__ = [
    "Lagging",
    "PartModel",
    "ReplicasMachine",
    "commands_of",
    "for_type",
    "messages",
    "queries_of",
    "same_result",
]
