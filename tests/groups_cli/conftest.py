"""The shared cluster of a module (see kit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from raftcluster.config import ClusterFile
from tests.groups_cli.kit import cluster_up


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFile]:
    with cluster_up(tmp_path_factory.mktemp("cluster")) as running:
        yield running
