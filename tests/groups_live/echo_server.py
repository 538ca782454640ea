"""A group's resource for the live tests: a TCP server that says where it runs.

    python echo_server.py PORT

Each connection gets one line, `<RAFTCLUSTER_NODE> <RAFTCLUSTER_EPOCH> <pid>`, and is
closed. SIGTERM ends it (exit 0).
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def main() -> None:
    port = int(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    line = "{} {} {}\n".format(
        os.environ.get("RAFTCLUSTER_NODE", "?"),
        os.environ.get("RAFTCLUSTER_EPOCH", "?"),
        os.getpid(),
    ).encode()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(16)
        while True:
            connection, _ = server.accept()
            with connection:
                connection.sendall(line)


if __name__ == "__main__":
    main()
