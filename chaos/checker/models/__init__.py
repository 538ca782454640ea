"""The built-in models and the registry that finds a model by name.

`make_model("register", {"initial": None, "fail": "definite"})` builds one from the options
a history's manifest or the command line gives; `register_model(name, factory)` adds your
own (a factory takes the options mapping and returns a `Model`, raising `ModelError` for
options it does not accept). A name with a colon is an import path, ``"module:NAME"``
(`raftcluster.loading`): `NAME` is a model class with `from_options(options)`, like the
built-in ones, or a factory; `make_model("bank:BankModel")` imports it, no registering
needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from chaos.checker.errors import ModelError
from chaos.checker.model import Model
from chaos.checker.models.kv import KvModel
from chaos.checker.models.multi_register import MultiRegisterModel
from chaos.checker.models.mutex import MutexModel
from chaos.checker.models.register import RegisterModel
from raftcluster.loading import PartLoadError, load_object

ModelFactory = Callable[[Mapping[str, Any]], Model]

MODELS: dict[str, ModelFactory] = {
    "register": RegisterModel.from_options,
    "kv": KvModel.from_options,
    "mutex": MutexModel.from_options,
    "multi-register": MultiRegisterModel.from_options,
}


def register_model(name: str, factory: ModelFactory) -> None:
    """Make `name` usable by `make_model` and `raftcluster chaos check --model`."""
    if name in MODELS and MODELS[name] is not factory:
        raise ModelError(name, "a different model is already registered under this name")
    MODELS[name] = factory


def make_model(name: str, options: Mapping[str, Any] | None = None) -> Model:
    """The model registered as `name`, built with `options`; `ModelError` if either is bad."""
    if ":" in name:
        return _load_model(name, options or {})
    factory = MODELS.get(name)
    if factory is None:
        raise ModelError(name, f"unknown model (known: {', '.join(sorted(MODELS))})")
    return factory(options or {})


def _load_model(path: str, options: Mapping[str, Any]) -> Model:
    """The model an import path names, built with `options`; `ModelError` naming the path."""
    expected = "a model class with from_options(options), or a factory taking the options"
    try:
        found = load_object(path, expected=expected, check=callable)
    except PartLoadError as e:
        raise ModelError(path, e.reason) from None
    factory = cast(Callable[[Mapping[str, Any]], object], getattr(found, "from_options", found))
    model = factory(options)
    missing = [m for m in ("init", "prepare", "step", "partition") if not hasattr(model, m)]
    if missing:
        raise ModelError(path, f"built {type(model).__name__}, which lacks {', '.join(missing)}")
    return cast(Model, model)


__all__ = [
    "MODELS",
    "KvModel",
    "ModelFactory",
    "MultiRegisterModel",
    "MutexModel",
    "RegisterModel",
    "make_model",
    "register_model",
]
