"""The one direction of imports (docs/architecture.md, "Layers"), checked by parsing every module.

Imports are read with `ast`, including those inside functions and conditionals, so a
conditional or late import cannot hide a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)
# Standard library modules a pure core may not touch: clocks, randomness, I/O, threads.
IMPURE = {
    "time",
    "random",
    "os",
    "socket",
    "threading",
    "asyncio",
    "trio",
    "subprocess",
    "datetime",
    "secrets",
    "select",
    "selectors",
    "signal",
    "multiprocessing",
    "concurrent",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "pickle",
    "marshal",
    "shelve",
    "uuid",
    "sched",
    "ssl",
    "http",
    "urllib",
    "logging",
}


# The one module that imports what a user names ("module:NAME" paths): raftcluster/loading.py.
DYNAMIC_IMPORT_ALLOWED = {ROOT / "raftcluster" / "loading.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: stays inside the package
                found.add("." * node.level + (node.module or ""))
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in ("__import__", "importlib.import_module", "import_module"):
                found.add("<dynamic import>")
    return found


def modules_of(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    return files


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", modules_of("statemachine"), ids=lambda p: p.name)
def test_statemachine_is_pure(path: Path) -> None:
    for name in imported_modules(path):
        root = top(name)
        if name.startswith("."):
            continue
        assert root != "<dynamic import>", f"{path}: dynamic import"
        assert root in STDLIB | {"statemachine", "attrs", "cbor2", "__future__"}, (
            f"{path.relative_to(ROOT)} imports {name}: statemachine may import only the "
            "standard library, attrs and cbor2"
        )
        assert root not in IMPURE, (
            f"{path.relative_to(ROOT)} imports {name}: no clocks, randomness, I/O or threads "
            "in the state machine"
        )


@pytest.mark.parametrize("path", modules_of("raftcluster"), ids=lambda p: str(p.relative_to(ROOT)))
def test_raftcluster_never_imports_chaos(path: Path) -> None:
    for name in imported_modules(path):
        assert top(name) != "chaos", f"{path.relative_to(ROOT)} imports {name}"
        if path not in DYNAMIC_IMPORT_ALLOWED:
            assert name != "<dynamic import>", f"{path.relative_to(ROOT)}: dynamic import"


def test_no_pickle_anywhere() -> None:
    for package in ("statemachine", "raftcluster", "chaos"):
        for path in modules_of(package):
            names = {top(n) for n in imported_modules(path)}
            assert not names & {"pickle", "marshal", "shelve", "dill", "cloudpickle"}, path


def test_checker_sees_conditional_and_nested_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "if False:\n    import time\n"
        "def f():\n    from chaos import sim\n"
        "try:\n    import socket\nexcept ImportError:\n    pass\n"
        "m = __import__('random')\n"
    )
    assert imported_modules(sample) >= {"time", "chaos", "socket", "<dynamic import>"}
