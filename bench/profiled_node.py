"""Run a node (`python -m raftcluster ...`) under cProfile, measuring CPU time, on cue.

    python -m bench.profiled_node OUT.prof -m raftcluster node run ...
    python -m bench.profiled_node --steps-only OUT.prof -m raftcluster node run ...

bench/node_cpu.py starts the nodes through this with `--profile`. The profiler counts
the main thread's CPU time (`time.thread_time`: not the wall clock, in which a send to
a loopback socket that wakes its receiver on the same core looks expensive) and only
between SIGUSR1 (start) and SIGUSR2 (stop, and write `OUT.prof`), so that the start-up
and the warm-up stay out of it. Over the same span a trio instrument counts the task
steps by task name and the passes of the event loop (its waits for I/O), written to
`OUT.steps.json` as {"steps": {task name: count}, "loop_passes": count}.

With `--steps-only` only the steps are counted (no profile is written): the profiler
slows a node several times, which changes what its timers do (a 5-ms commit notice
falls due between every two sequential writes), so its step counts are not the real ones.
"""

from __future__ import annotations

import collections
import cProfile
import json
import runpy
import signal
import sys
import time
from typing import Any

import trio


class StepCounter(trio.abc.Instrument):
    """Counts task steps by task name, and the event loop's waits for I/O."""

    def __init__(self) -> None:
        self.steps: collections.Counter[str] = collections.Counter()
        self.loop_passes = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task.name] += 1

    def before_io_wait(self, timeout: float) -> None:
        self.loop_passes += 1


def main() -> None:
    args = sys.argv[1:]
    steps_only = args[0] == "--steps-only"
    if steps_only:
        args = args[1:]
    out = args[0]
    usage = "usage: python -m bench.profiled_node [--steps-only] OUT -m MODULE ARGS..."
    assert args[1] == "-m", usage
    module = args[2]
    sys.argv = [module, *args[3:]]
    profile = cProfile.Profile(time.thread_time)
    counter = StepCounter()

    def start(signum: int, frame: Any) -> None:
        # (The handler runs in the main thread, which runs trio: its run is current.)
        trio.lowlevel.add_instrument(counter)
        if not steps_only:
            profile.enable()

    def stop(signum: int, frame: Any) -> None:
        trio.lowlevel.remove_instrument(counter)
        if not steps_only:
            profile.disable()
            profile.dump_stats(out)
        counts = {"steps": dict(counter.steps), "loop_passes": counter.loop_passes}
        with open(f"{out}.steps.json", "w") as f:
            json.dump(counts, f)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
