"""The collector's view of the heap while a simulated run goes on.

A run allocates and drops many small containers (messages, tuples, lists), so Python's
cyclic garbage collector runs its passes again and again, and each full pass walks every
object the process holds: the modules, classes and functions imported before the run,
and whatever the caller keeps. None of those can become garbage because of the run.
`heap_frozen()` moves them into the collector's permanent generation for the run
(`gc.freeze`) and back after it (`gc.unfreeze`), so the passes walk only what the run
made. It changes what the collector looks at, never what the run computes: a seed gives
the same trace either way. If the heap was frozen already (by the caller), it is left
as it is.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    if gc.get_freeze_count():  # frozen by someone else: theirs to unfreeze
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
