"""`python -m raftcluster.supervisor.watchdog_main`: the watchdog process (`watchdog.main`).

A module of its own so that running it never executes `watchdog.py` a second time:
importing the `raftcluster` package (which `-m` does first) already imports it for the
node's side.
"""

import sys

from raftcluster.supervisor.watchdog import main

if __name__ == "__main__":
    sys.exit(main())
