"""The linearizability corpus (`shared/corpora/linearizability/`): where it is, what it holds.

The corpus sits beside the repository, at `../shared/corpora/linearizability` from its
root: a fresh clone with `shared/` next to it finds it there. A git worktree also looks
beside the main checkout it belongs to. `RAFTCLUSTER_CORPUS` overrides both. Last comes
the copy kept in the repository (`tests/corpora/linearizability`, byte for byte the
shared one), so a clone on a machine without `shared/` still checks every history.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from chaos.checker.errors import HistoryError

RELATIVE = Path("shared") / "corpora" / "linearizability"
VENDORED = Path("tests") / "corpora" / "linearizability"
ENVIRONMENT = "RAFTCLUSTER_CORPUS"
REPO_ROOT = Path(__file__).resolve().parents[2]


@attrs.frozen
class CorpusEntry:
    """One history of the corpus and what is known of it (a line of manifest.json)."""

    file: str  # relative to the corpus directory
    model: str
    options: dict[str, Any]
    expected_linearizable: bool
    operations: int
    processes: int
    porcupine_ms: float  # porcupine's median time to check it, in Go
    origin: str = ""

    @property
    def folder(self) -> str:
        return self.file.split("/")[0]

    @property
    def expected_verdict(self) -> str:
        return "ok" if self.expected_linearizable else "illegal"


def corpus_candidates(root: Path = REPO_ROOT) -> list[Path]:
    """Where the corpus may be, in the order tried."""
    places = []
    override = os.environ.get(ENVIRONMENT)
    if override:
        places.append(Path(override))
    places.append(root.parent / RELATIVE)
    git = root / ".git"
    if git.is_file():  # a worktree: ".git" says "gitdir: <main>/.git/worktrees/<name>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            gitdir = Path(text.partition(":")[2].strip())
            if gitdir.parent.name == "worktrees":
                places.append(gitdir.parent.parent.parent.parent / RELATIVE)
    places.append(root / VENDORED)
    return places


def find_corpus(root: Path = REPO_ROOT) -> Path:
    """The corpus directory; `FileNotFoundError` naming every place looked at."""
    places = corpus_candidates(root)
    for place in places:
        if (place / "manifest.json").is_file():
            return place
    looked = ", ".join(str(p) for p in places)
    raise FileNotFoundError(
        f"the linearizability corpus is not there (looked in {looked}); put shared/ beside "
        f"the repository or set {ENVIRONMENT}"
    )


def load_manifest(corpus: Path) -> list[CorpusEntry]:
    """The manifest's entries, validated."""
    path = corpus / "manifest.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise HistoryError(str(path), 0, f"cannot read the manifest: {e}") from e
    if not isinstance(raw, list):
        raise HistoryError(str(path), 0, "the manifest must be a JSON array")
    try:
        return [CorpusEntry(**entry) for entry in raw]
    except TypeError as e:
        raise HistoryError(str(path), 0, f"bad manifest entry: {e}") from e
