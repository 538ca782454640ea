"""docs/groups-node.md says what the code does: its defaults, its example, its TOML."""

from __future__ import annotations

import re
from pathlib import Path

from raftcluster.config import group_timing, init_cluster, load_cluster
from raftcluster.config.schema import GROUP_KEYS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "groups-node.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def test_the_groups_table_lists_every_key_with_its_default() -> None:
    section = DOC.split("## Configuration: `[groups]`", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `(\d+)` \|", section, flags=re.M))
    assert rows == {k.name: str(k.default) for k in GROUP_KEYS}


def test_the_timing_example_runs() -> None:
    exec(compile(blocks("python")[0], "docs/groups-node.md", "exec"), {})  # noqa: S102


def test_the_toml_example_loads(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=1)
    toml = blocks("toml")[0]
    text = cluster.path.read_text().replace("[groups]\n", toml, 1)
    cluster.path.write_text(text)
    timing = group_timing(load_cluster(cluster.path))
    assert (timing.fence_after_ms, timing.node_down_after_ms) == (3_000, 8_000)
