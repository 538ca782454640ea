"""A tiny server for health checks: `python health_server.py PORT STATUS [DELAY_MS]`.

Waits DELAY_MS, then listens on 127.0.0.1:PORT and answers every connection with
`HTTP/1.0 STATUS` (a TCP health check only needs the connection). Prints its
RAFTCLUSTER_EPOCH on stdout first, so tests can see the environment it got.
"""

from __future__ import annotations

import os
import socket
import sys
import time


def main() -> None:
    port, status = int(sys.argv[1]), int(sys.argv[2])
    delay_ms = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    print(f"epoch={os.environ.get('RAFTCLUSTER_EPOCH')}", flush=True)
    time.sleep(delay_ms / 1000)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(16)
    while True:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(4096)
                conn.sendall(f"HTTP/1.0 {status} Status\r\nContent-Length: 0\r\n\r\n".encode())
            except OSError:
                pass


if __name__ == "__main__":
    main()
