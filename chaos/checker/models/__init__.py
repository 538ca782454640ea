"""The built-in models and the registry that finds a model by name.

`make_model("register", {"initial": None, "fail": "definite"})` builds one from the options
a history's manifest or the command line gives; `register_model(name, factory)` adds your
own (a factory takes the options mapping and returns a `Model`, raising `ModelError` for
options it does not accept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chaos.checker.errors import ModelError
from chaos.checker.model import Model
from chaos.checker.models.kv import KvModel
from chaos.checker.models.multi_register import MultiRegisterModel
from chaos.checker.models.mutex import MutexModel
from chaos.checker.models.register import RegisterModel

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
    factory = MODELS.get(name)
    if factory is None:
        raise ModelError(name, f"unknown model (known: {', '.join(sorted(MODELS))})")
    return factory(options or {})


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
