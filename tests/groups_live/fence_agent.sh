#!/bin/sh
# A fencing agent for the live tests: `fence_agent.sh DIR NODE`. It records each call in
# DIR/calls and fences (exits 0) only once DIR/allow exists.
echo "$2 $RAFTCLUSTER_FENCE_NODE" >> "$1/calls"
if [ -e "$1/allow" ]; then
    exit 0
fi
echo "power switch for node $2 unreachable" >&2
exit 1
