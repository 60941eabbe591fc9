"""A local static file server (HTTP/1.1, keep-alive) for the sitemap and page benchmarks.

`python -m benchmarks.static_server DIRECTORY PORT HOST [HOST ...]` serves DIRECTORY on every
HOST (loopback addresses such as 127.0.0.2 give the page scraper several hosts) at PORT.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production servers set it: with Nagle's algorithm a response on a
    # kept-alive connection waits for the client's delayed ACK (40 ms on Linux) before its
    # last segment, which capped any client that reuses connections at a few pages a second.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: logging every request would cost the server time."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main(argv: Sequence[str]) -> None:
    """Serve until killed."""
    directory, port, *hosts = argv
    handler = functools.partial(_Handler, directory=directory)
    servers = [_Server((host, int(port)), handler) for host in hosts]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
