"""`Kinds`: the resource types a node knows, by name.

`Kinds.default()` is what a node uses: the built-in types (`process`; `ocf` when
`raftcluster/resources/ocf.py` is installed) plus every type added process-wide with
`register_resource_kind` before the node started. A type of your own:

    class MyKind:                     # implements raftcluster.resources.kind.ResourceKind
        name = "mine"
        ...
    register_resource_kind(MyKind())  # before the node starts, on every node

A resource whose type a node does not know fails to start there, fatally (the group is
given up on that node; see `ResourceExecutor`).
"""

from __future__ import annotations

from collections.abc import Iterable

from raftcluster.resources.kind import ResourceKind
from statemachine.errors import ClusterError


class DuplicateKind(ClusterError):
    """A resource type registered under a name that is already taken."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a resource type named {name!r} is already registered")
        self.name = name


class Kinds:
    """Resource types by name (a node's, or one built for a test)."""

    def __init__(self, kinds: Iterable[ResourceKind] = ()) -> None:
        self._kinds: dict[str, ResourceKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: ResourceKind) -> None:
        """Add `kind` under `kind.name`; raises DuplicateKind if the name is taken."""
        if kind.name in self._kinds:
            raise DuplicateKind(kind.name)
        self._kinds[kind.name] = kind

    def get(self, name: str) -> ResourceKind | None:
        return self._kinds.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._kinds))

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    @classmethod
    def default(cls) -> Kinds:
        """A new registry: new instances of the built-in types, and the types given to
        `register_resource_kind` so far (those instances are shared by every node of
        the process)."""
        return cls([*_builtin(), *_registered])


_registered: list[ResourceKind] = []  # register_resource_kind's, in order


def register_resource_kind(kind: ResourceKind) -> None:
    """Add a resource type to the process-wide default (`Kinds.default()`) that nodes
    started afterwards in this process use. Raises DuplicateKind if a built-in or an
    earlier registered type has its name."""
    taken = {k.name for k in (*_builtin(), *_registered)}
    if kind.name in taken:
        raise DuplicateKind(kind.name)
    _registered.append(kind)


def _builtin() -> list[ResourceKind]:
    """New instances of the built-in types (a kind keeps per-resource state: each node
    gets its own, even when several run in one process)."""
    from raftcluster.resources.process import ProcessKind

    kinds: list[ResourceKind] = [ProcessKind()]
    try:  # written on another branch: absent until merged
        from raftcluster.resources.ocf import OcfKind
    except ModuleNotFoundError as error:
        if error.name != "raftcluster.resources.ocf":
            raise  # ocf.py is there but imports something missing: a real error
    else:
        kinds.append(OcfKind())
    return kinds
