"""Campaign progress on stderr: a bar redrawn in place on a terminal, otherwise a plain
line every few seeds (logs and CI output stay readable)."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30
PLAIN_EVERY = 5  # seeds between two plain progress lines


class Progress:
    def __init__(self, total: int, stream: TextIO, tty: bool | None = None) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.done = 0
        self.failed = 0
        self._started = time.monotonic()

    def update(self, seed: int, ok: bool) -> None:
        """Seed `seed` finished."""
        self.done += 1
        self.failed += not ok
        elapsed = time.monotonic() - self._started
        if self.tty:
            self.stream.write("\r" + self._bar(seed, elapsed))
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done % PLAIN_EVERY == 0 or self.done == self.total:
            self.stream.write(
                f"chaos: {self.done}/{self.total} seeds, {self.failed} failed, {elapsed:.1f} s\n"
            )
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line if the campaign stopped early."""
        if self.tty and 0 < self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()

    def _bar(self, seed: int, elapsed: float) -> str:
        filled = BAR_WIDTH * self.done // max(self.total, 1)
        eta = elapsed / self.done * (self.total - self.done)
        return (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total} "
            f"failed {self.failed}  seed {seed}  {elapsed:.0f} s, eta {eta:.0f} s  "
        )
