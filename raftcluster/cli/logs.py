"""Logging for node processes: every line carries the node id."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error")


def setup_node_logging(node_id: int, level: str = "info", file: Path | None = None) -> None:
    """Log to `file` (appending) or stderr, each line as
    ``2024-05-01 12:00:00,123 [node 2] INFO raftcluster.node: ...``."""
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(file, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s [node {node_id}] %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
