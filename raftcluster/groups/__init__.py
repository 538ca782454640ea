"""The cluster service on a node (docs/groups-node.md): sans-IO cores, driven by a shell.

actions     what the controller is told (`Owned`, `Observation`) and asks for (`Action`,
            `Lease`, reports to propose)
controller  `ResourceController`, the sans-IO core that runs the groups this node owns
            at their current epoch: starts and stops resources in order, monitors them,
            restarts them in place as the policy allows, gives a group up, and fences
            the node when its lease is about to end
lease       `LeaseKeeper`: heartbeats out, leaders' acks in, the lease end
heartbeat   `NodeHeartbeat` / `NodeHeartbeatAck` (codec tags 370-371)
manager     `NodeManager`, the leader's service that proposes NodeDown, NodeUp and
            GroupsTick, with its tenure and clock-jump guards
timing      `GroupTiming`: fence and node-down times, and the rule between them
updates     `GlobalUpdates`: `on_update` handlers fed the groups events in log order,
            resuming from a durable cursor (`cursor.CursorFile`)

The decisions about where groups run are the replicated state's (`statemachine.groups`);
the controller only carries out, on one node, what that state says the node owns.
"""
