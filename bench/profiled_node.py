"""Run a node (`python -m raftcluster ...`) under cProfile, measuring CPU time, on cue.

    python -m bench.profiled_node OUT.prof -m raftcluster node run ...

bench/node_cpu.py starts the nodes through this with `--profile`. The profiler counts
the main thread's CPU time (`time.thread_time`: not the wall clock, in which a send to
a loopback socket that wakes its receiver on the same core looks expensive) and only
between SIGUSR1 (start) and SIGUSR2 (stop, and write `OUT.prof`), so that the start-up
and the warm-up stay out of it.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time
from typing import Any


def main() -> None:
    out = sys.argv[1]
    assert sys.argv[2] == "-m", "usage: python -m bench.profiled_node OUT -m MODULE ARGS..."
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    profile = cProfile.Profile(time.thread_time)

    def start(signum: int, frame: Any) -> None:
        profile.enable()

    def stop(signum: int, frame: Any) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
