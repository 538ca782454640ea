"""Import paths: the one way to name a user's parts, workloads and models.

A path is ``"module:NAME"``: `module` a dotted module name that Python can import (an
installed package, or a module on ``PYTHONPATH``), `NAME` a dotted attribute of it
(``"bank:BANK"``, ``"bank.parts:Specs.ALL"``). The same syntax serves `cluster.toml`
(``[state] parts``), the embedding API, the simulator and the chaos command line.

`load_object(path, expected=..., check=...)` imports and resolves one path and checks
what it names; `load_parts(paths)` loads a node's user parts. Each path for parts may
name:
- a `PartSpec`;
- a list or tuple of `PartSpec`s;
- a callable taking no arguments that returns one of the two above (called once, when
  the path is loaded: it must return the same parts on every node).

Every failure raises `PartLoadError` naming the path and the reason: the module does not
import (missing, or it raised), the name is missing, the object is of the wrong kind, the
import took over a message tag another class held, or the parts collide with each other
or with the built-in parts (a name, a routed class, a tag, a tag below 10000). Nothing
is half-loaded: the caller gets every part or the error.

This is the one module of `raftcluster` allowed a dynamic import
(`tests/test_architecture.py` knows it): it imports what the user names, nothing else.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence

from statemachine.cluster import ClusterState
from statemachine.codec import Message, registered, registered_tags
from statemachine.errors import ClusterError
from statemachine.part import PartSpec

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*"
_PATH = re.compile(rf"({_DOTTED}):({_DOTTED})")
MAX_PATH_CHARS = 512  # an import path is a few dozen characters; this bounds error messages

PARTS_EXPECTED = (
    "a PartSpec, a list or tuple of PartSpecs, or a callable taking no arguments that "
    "returns one of those"
)


class PartLoadError(ClusterError):
    """An import path that cannot be used: `path` is the path as given, `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def split_path(path: str) -> tuple[str, str]:
    """`(module, name)` of ``"module:name"``, or PartLoadError saying what a path looks like."""
    if not isinstance(path, str):
        raise PartLoadError(repr(path), f"an import path is a str, got {type(path).__name__}")
    found = _PATH.fullmatch(path) if len(path) <= MAX_PATH_CHARS else None
    if found is None:
        shown = path if len(path) <= MAX_PATH_CHARS else path[:MAX_PATH_CHARS] + "..."
        raise PartLoadError(
            shown, "not an import path: expected 'module:NAME' (for example 'bank:BANK')"
        )
    return found.group(1), found.group(2)


def load_object(path: str, *, expected: str, check: Callable[[object], bool]) -> object:
    """Import the module of `path` and return the object it names, if `check(object)`.

    `expected` describes the accepted kind for the error message (``"a Workload class"``).
    Raises `PartLoadError` (path and reason) for a malformed path, a module that does not
    import, a missing name, an object `check` refuses, or an import that took over a
    message tag already registered to another class.
    """
    module_name, name = split_path(path)
    before = registered_tags()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise PartLoadError(
                path, f"no module named {e.name!r} (is it installed, or on PYTHONPATH?)"
            ) from None
        raise PartLoadError(path, f"importing {module_name} failed: {_describe(e)}") from e
    except Exception as e:  # noqa: BLE001 - the user's module may raise anything; report it
        raise PartLoadError(path, f"importing {module_name} failed: {_describe(e)}") from e
    _check_tags_kept(path, before)
    found: object = module
    walked = module_name
    for attribute in name.split("."):
        try:
            found = getattr(found, attribute)
        except AttributeError:
            raise PartLoadError(path, f"{walked} has no attribute {attribute!r}") from None
        walked = f"{walked}.{attribute}"
    if not check(found):
        raise PartLoadError(path, f"{name} is {_kind(found)}, expected {expected}")
    return found


def load_parts(paths: Sequence[str]) -> tuple[PartSpec, ...]:
    """The user parts `paths` name, in order, checked against each other and the built-ins.

    Raises `PartLoadError` naming the first bad path: any failure of `load_object`, a
    callable that raises or returns the wrong kind, or parts that cannot all be registered
    together beside the built-in ones (a name taken, a class routed twice, a tag below
    10000 or not the class's own, a factory that fails).
    """
    if isinstance(paths, str):
        raise PartLoadError(paths, "expected a list of import paths, got one str")
    loaded: list[tuple[str, PartSpec]] = []
    for path in paths:
        found = load_object(path, expected=PARTS_EXPECTED, check=_parts_or_callable)
        if not _parts_like(found):
            assert callable(found)
            try:
                found = found()
            except Exception as e:  # noqa: BLE001 - the user's callable may raise anything
                raise PartLoadError(path, f"calling it raised {_describe(e)}") from e
            if not _parts_like(found):
                raise PartLoadError(
                    path,
                    f"calling it returned {_kind(found)}, expected "
                    "a PartSpec or a list or tuple of PartSpecs",
                )
        specs = (found,) if isinstance(found, PartSpec) else tuple(found)  # type: ignore[arg-type]
        loaded.extend((path, spec) for spec in specs)
    _check_together(loaded)
    return tuple(spec for _, spec in loaded)


def _check_together(loaded: list[tuple[str, PartSpec]]) -> None:
    """Register every part in a trial state, as a node will: the same checks, with paths."""
    trial = ClusterState()
    builtin = set(trial.part_names)
    for path, spec in loaded:
        if spec.name in builtin:
            raise PartLoadError(path, f"part {spec.name!r}: the name of a built-in part")
        for cls in (*spec.commands, *spec.queries):
            _check_message_class(path, spec, cls)
        try:
            trial.register(spec)
        except ClusterError as e:
            raise PartLoadError(path, f"part {spec.name!r}: {e}") from None
        except Exception as e:  # noqa: BLE001 - its factory is the user's code
            raise PartLoadError(
                path, f"part {spec.name!r}: building it raised {_describe(e)}"
            ) from e


def _check_message_class(path: str, spec: PartSpec, cls: object) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Message)):
        raise PartLoadError(path, f"part {spec.name!r}: {cls!r} is not a Message class")
    owner = registered(getattr(cls, "TAG", -1))
    if owner is not cls:
        held = "nothing" if owner is None else f"{owner.__module__}.{owner.__qualname__}"
        raise PartLoadError(
            path,
            f"part {spec.name!r}: {cls.__module__}.{cls.__qualname__} is not the class "
            f"registered under its tag {getattr(cls, 'TAG', None)} ({held} is): give it "
            "@tagged(n) with a tag of its own",
        )


def _check_tags_kept(path: str, before: dict[int, type[Message]]) -> None:
    """An import that re-registered a tag (a class of the same name elsewhere) is refused."""
    after = registered_tags()
    for tag, cls in sorted(before.items()):
        now = after.get(tag)
        if now is not cls and now is not None:
            raise PartLoadError(
                path,
                f"tag {tag} of {cls.__module__}.{cls.__qualname__} was taken over by "
                f"{now.__module__}.{now.__qualname__}: two message classes share the tag",
            )


def _parts_like(found: object) -> bool:
    if isinstance(found, PartSpec):
        return True
    return (
        isinstance(found, (list, tuple))
        and bool(found)
        and all(isinstance(s, PartSpec) for s in found)
    )


def _parts_or_callable(found: object) -> bool:
    return _parts_like(found) or (callable(found) and not isinstance(found, type))


def _kind(found: object) -> str:
    if isinstance(found, type):
        return f"the class {found.__qualname__}"
    if isinstance(found, (list, tuple)) and not found:
        return f"an empty {type(found).__name__}"
    if isinstance(found, (list, tuple)):
        kinds = sorted({type(item).__name__ for item in found})
        return f"a {type(found).__name__} of {', '.join(kinds)}"
    return f"a {type(found).__name__}"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
