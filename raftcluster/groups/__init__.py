"""The cluster service on a node: the resource controller core and what it works with.

actions     what the controller is told (`Owned`, `Observation`) and asks for (`Action`,
            `Lease`, reports to propose)
controller  `ResourceController`, the sans-IO core that runs the groups this node owns
            at their current epoch: starts and stops resources in order, monitors them,
            restarts them in place as the policy allows, gives a group up, and fences
            the node when it loses its quorum
timing      `GroupTiming`: fence and node-down times, and the rule between them

The decisions about where groups run are the replicated state's (`statemachine.groups`);
the controller only carries out, on one node, what that state says the node owns.
"""
