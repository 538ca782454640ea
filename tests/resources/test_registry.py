"""The registry of resource types."""

from __future__ import annotations

import importlib.util

import pytest

from raftcluster.resources.process import ProcessKind
from raftcluster.resources.registry import DuplicateKind, Kinds, register_resource_kind


class Custom:
    name = "custom-registry-test"

    def check(self, params: object) -> None:
        pass

    async def start(self, ctx: object) -> None:
        pass

    async def stop(self, ctx: object) -> None:
        pass

    async def monitor(self, ctx: object) -> None:
        pass


def test_the_default_has_the_builtin_types() -> None:
    kinds = Kinds.default()
    assert "process" in kinds
    assert isinstance(kinds.get("process"), ProcessKind)
    has_ocf = importlib.util.find_spec("raftcluster.resources.ocf") is not None
    assert ("ocf" in kinds) == has_ocf
    # each registry gets its own instances: per-resource state is per node
    assert Kinds.default().get("process") is not kinds.get("process")


def test_a_name_is_registered_once() -> None:
    kinds = Kinds([ProcessKind()])
    with pytest.raises(DuplicateKind, match="'process' is already registered"):
        kinds.register(ProcessKind())
    assert kinds.names() == ("process",)
    assert kinds.get("nosuch") is None


def test_register_resource_kind_reaches_every_new_default() -> None:
    custom = Custom()
    register_resource_kind(custom)  # process-wide: a name no other test uses
    assert Kinds.default().get(custom.name) is custom
    with pytest.raises(DuplicateKind):
        register_resource_kind(Custom())
    with pytest.raises(DuplicateKind):
        register_resource_kind(ProcessKind())
