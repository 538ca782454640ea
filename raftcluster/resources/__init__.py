"""Resource types: what a group's resources are, and how a node starts, stops and
monitors them (docs/groups.md, "Resource types").

kind        `ResourceKind` (the protocol every type implements), `ResourceContext` (what
            one action is given), `ResourceFailed` and its `Severity`
process     `ProcessKind`: the "process" type (one long-running command, health checks)
registry    `Kinds` (types by name), `register_resource_kind` (add a type process-wide)
executor    `ResourceExecutor`: carries out the controller's actions, one observation each
ocf         `OcfKind`: resources run by OCF resource agents (`agent = "ocf:heartbeat:Dummy"`),
            `meta_data` / `parse_meta_data`: an agent's description
"""

from raftcluster.resources.kind import ResourceContext, ResourceFailed, ResourceKind, Severity
from raftcluster.resources.registry import DuplicateKind, Kinds, register_resource_kind

__all__ = [
    "DuplicateKind",
    "Kinds",
    "ResourceContext",
    "ResourceFailed",
    "ResourceKind",
    "Severity",
    "register_resource_kind",
]
