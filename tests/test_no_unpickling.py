"""No code path turns bytes into objects except through vetted, data-only parsers.

test_architecture.py already forbids importing pickle and its kin. This test reads
every module's syntax tree for the other ways in: calls named `load`/`loads` other
than the data-only parsers below (cbor2 without object hooks, json, tomllib), YAML,
and `eval`/`exec`/`compile` of anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("statemachine", "raftcluster", "chaos")
ALLOWED_LOADS = {
    "cbor2.loads", "cbor2.load", "json.loads", "json.load", "tomllib.loads", "tomllib.load",
}  # fmt: skip
FORBIDDEN_MODULES = {
    "pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle",
    "yaml", "copyreg",
}  # fmt: skip
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
# Reviewed uses of a forbidden call: (module, call). Each runs text of our own, never bytes.
REVIEWED_CALLS = {
    # The checked `__init__` of each message class, generated (as attrs generates its own)
    # from the class's signature and field annotations: identifiers and our constants only
    ("statemachine/codec.py", "exec"),
}
# Reviewed exceptions: (module, call). Each reads no bytes from outside the installation.
REVIEWED = {
    # importlib entry point: imports an installed plugin module (the chaos commands)
    ("raftcluster/cli/__init__.py", "plugin.load"),
    # chaos.report.record.loads: the run record's own reader, json.loads plus validation
    ("chaos/report/directory.py", "loads"),
    # Storage.load: reads the node's own write-ahead log through the storage's CRC-checked
    # record parser and the codec (no object construction from the bytes beyond that)
    ("raftcluster/node/replica.py", "storage.load"),
    # (the node loads it before building the replica, to decide how it starts)
    ("raftcluster/node/runtime.py", "storage.load"),
    # The simulator's durability oracle: Storage.load of the real storage (as above) and
    # of its shadow, a MemoryStorage, which reads no bytes at all
    ("chaos/sim/durability.py", "self._inner.load"),
    ("chaos/sim/durability.py", "self._shadow.load"),
    ("chaos/sim/durability.py", "shadow.load"),
}


def findings(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename=filename)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [module or "", *names]:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{filename}:{node.lineno} imports {name}")
            if module == "cbor2" and {"loads", "load", "CBORDecoder"} & set(names):
                found.append(f"{filename}:{node.lineno} imports a cbor2 loader by name")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            leaf = name.rpartition(".")[2]
            loader = leaf in ("load", "loads", "Unpickler") and name not in ALLOWED_LOADS
            if loader and (filename, name) not in REVIEWED:
                found.append(f"{filename}:{node.lineno} calls {name}")
            if name in FORBIDDEN_CALLS and (filename, name) not in REVIEWED_CALLS:
                found.append(f"{filename}:{node.lineno} calls {name}")
            if name in ("cbor2.loads", "cbor2.load") and any(
                k.arg == "object_hook" for k in node.keywords
            ):
                found.append(f"{filename}:{node.lineno} gives cbor2 an object hook")
    return found


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_deserializes_objects(path: Path) -> None:
    assert findings(path.read_text(), str(path.relative_to(ROOT))) == []


def test_the_checker_sees_the_ways_in() -> None:
    sample = "\n".join(
        [
            "import pickle",
            "from marshal import loads",
            "from cbor2 import loads as l2",
            "import yaml",
            "x = pickle.loads(b'')",
            "y = loads(b'')",
            "z = something.load(f)",
            "w = eval('1')",
            "v = cbor2.loads(b'', object_hook=h)",
            "ok = cbor2.loads(b'')",
            "fine = json.loads('1')",
        ]
    )
    found = findings(sample, "sample.py")
    lines = sorted({int(f.split(":")[1].split()[0]) for f in found})
    assert lines == [1, 2, 3, 4, 5, 6, 7, 8, 9]
