"""The cluster service's replicated state: nodes, resource groups, ownership, events.

messages    the part's commands, queries, results and events (tags 300-359)
config      GroupsConfig: the length of a day for windows, the events retained
table       the records (nodes, groups, the last epoch) and their invariants
placement   the one pure function from the state to decisions (scores, rule, reason)
change      how an accepted command changes the table: grants, moves, releases, events
commands    one handler per command: every check, then the change
events      the event log: revisions without gaps, the last N retained, paging
part        GroupsPart (the `Part`), its queries and snapshot; `spec(config)`

`ClusterState(groups=GroupsConfig(...))` builds it as the built-in part `groups`;
`state.part("groups")` is the running `GroupsPart`.
"""

from statemachine.groups.config import GroupsConfig
from statemachine.groups.part import NAME, GroupsPart

__all__ = ["NAME", "GroupsConfig", "GroupsPart"]
