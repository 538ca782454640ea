"""Linearizability checking of recorded histories (docs/checker.md).

from chaos.checker import load_history, make_model, check
history = load_history("run/history.jsonl")
result = check(history, make_model("register", {"initial": None}), timeout_s=30)
result.verdict          # Verdict.OK, Verdict.ILLEGAL or Verdict.UNKNOWN
result.witness          # when illegal: the dead end and a minimal core
result.to_json()        # what `raftcluster chaos check --json` prints
"""

from __future__ import annotations

from chaos.checker.errors import HistoryError, ModelError
from chaos.checker.history import (
    Event,
    History,
    HistoryLimits,
    Operation,
    Status,
    dump_events,
    history_from_events,
    load_history,
    parse_history,
)
from chaos.checker.model import BaseModel, Model, OptionReader, Prepared
from chaos.checker.models import MODELS, make_model, register_model
from chaos.checker.search import Deadline
from chaos.checker.values import freeze, thaw
from chaos.checker.verdict import (
    CheckResult,
    ClockDeadline,
    EffortClock,
    Never,
    Verdict,
    check,
    relax,
)
from chaos.checker.witness import Witness

__all__ = [
    "MODELS",
    "BaseModel",
    "CheckResult",
    "ClockDeadline",
    "Deadline",
    "EffortClock",
    "Event",
    "History",
    "HistoryError",
    "HistoryLimits",
    "Model",
    "ModelError",
    "Never",
    "Operation",
    "OptionReader",
    "Prepared",
    "Status",
    "Verdict",
    "Witness",
    "check",
    "dump_events",
    "freeze",
    "history_from_events",
    "load_history",
    "make_model",
    "parse_history",
    "register_model",
    "relax",
    "thaw",
]
