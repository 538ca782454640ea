"""`GroupsConfig`: the groups part's knobs. Every replica must use the same ones.

- `day_ms`: the length of a day for failback windows (`hour_of_day(at_ms) = (at_ms %
  day_ms) * 24 // day_ms`). A real cluster keeps the default; the simulator compresses a
  day into seconds so that windows open and close within a run.
- `max_events`: events retained for `GetEvents`; older ones are compacted (a reader that
  asks for them gets COMPACTED). The default, 4,096, covers the events of a whole node's
  failover at the largest scale (a node owning 1,000 groups emits about three events per
  group: offline, placed, starting), so a watcher that was behind by one such burst can
  still resume; and with a few hundred bytes per event the snapshot stays at a few MB.
"""

from __future__ import annotations

import attrs

from statemachine.codec import int_range
from statemachine.groups.messages import DAY_MS

MAX_RETAINED_EVENTS = 100_000  # the largest `max_events` (a snapshot holds them all)


@attrs.frozen
class GroupsConfig:
    day_ms: int = attrs.field(default=DAY_MS, validator=int_range(24, DAY_MS * 366))
    max_events: int = attrs.field(default=4_096, validator=int_range(1, MAX_RETAINED_EVENTS))


def hour_of_day(at_ms: int, day_ms: int) -> int:
    """The hour (0..23) of the day that `at_ms` falls in, with days of `day_ms`."""
    return (at_ms % day_ms) * 24 // day_ms
