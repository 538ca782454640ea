"""The client side, sans-IO first: `core.ClientCore` holds the session and retry logic
that the trio client and the simulator's workloads both drive."""

from raftcluster.client.core import ClientConfig, ClientCore, Completion, Send

__all__ = ["ClientConfig", "ClientCore", "Completion", "Send"]
