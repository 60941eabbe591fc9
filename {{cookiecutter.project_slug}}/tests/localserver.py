"""A local HTTP server for outbound tests: real files and scripted routes on 127.0.0.1.

Files under `tests/fixtures/` are served at `/files/<name>`, with `http://SERVER` replaced by
this server's origin; `/files/<name>.gz` serves `<name>` gzip-compressed. Other paths answer from
routes registered by the test. Every request is recorded. Nothing leaves the machine.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
ORIGIN_PLACEHOLDER = b"http://SERVER"


@dataclass(frozen=True)
class Reply:
    """What a route answers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (for timeouts)."""
    chunks: int = 1
    """Send the body in this many pieces, `delay` apart (slow-drip bodies)."""
    chunked: bool = False
    """Use chunked transfer encoding: no Content-Length for the client to check first."""
    stream: Callable[[], Iterable[bytes]] | None = None
    """Make the body while sending it, chunked, instead of `body` (large documents, never held
    whole); each piece is sent as it comes, `delay` after the previous one."""


@dataclass(frozen=True)
class Recorded:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Recorded], Reply]


class LocalServer:
    """Routes and files on a threaded stdlib HTTP server."""

    def __init__(self, files: Path = FIXTURES) -> None:
        self.files = files
        self.routes: dict[str, Handler] = {}
        self.requests: list[Recorded] = []
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self.port = self._server.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """Absolute URL of `path` on this server."""
        return f"http://{host}:{self.port}{path}"

    def reply(self, path: str, reply: Reply) -> None:
        """Answer `path` with `reply` every time."""
        self.routes[path] = lambda _: reply

    def content(self, path: str, body: bytes | str, content_type: str = "text/plain") -> None:
        """Answer `path` with 200 and `body`."""
        data = body.encode() if isinstance(body, str) else body
        self.reply(path, Reply(body=data, headers={"Content-Type": content_type}))

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer `path` with a redirect to `location`."""
        self.reply(path, Reply(status=status, headers={"Location": location}))

    def sequence(self, path: str, replies: list[Reply]) -> None:
        """Answer `path` with `replies` in order, then keep repeating the last one."""
        remaining = list(replies)

        def handler(_: Recorded) -> Reply:
            return remaining.pop(0) if len(remaining) > 1 else remaining[0]

        self.routes[path] = handler

    def hits(self, path: str) -> list[Recorded]:
        """The recorded requests for `path`."""
        return [request for request in self.requests if request.path == path]

    def answer(self, request: Recorded) -> Reply:
        """The reply for a recorded request: a route, a fixture file or 404."""
        self.requests.append(request)
        handler = self.routes.get(request.path)
        if handler is not None:
            return handler(request)
        if request.path.startswith("/files/"):
            return self._file(request.path.removeprefix("/files/"))
        return Reply(status=404, body=b"not found")

    def _file(self, name: str) -> Reply:
        """A fixture file (origin filled in), gzip-compressed when asked for `<name>.gz`."""
        compress = name.endswith(".gz") and not (self.files / name).is_file()
        target = (
            self.files / name.removesuffix(".gz") if compress else self.files / name
        ).resolve()
        if not target.is_file() or self.files.resolve() not in target.parents:
            return Reply(status=404, body=b"not found")
        body = target.read_bytes().replace(ORIGIN_PLACEHOLDER, self.url("").encode())
        if compress:
            return Reply(body=gzip.compress(body), headers={"Content-Type": "application/gzip"})
        return Reply(body=body, headers=_file_headers(target))

    @contextmanager
    def running(self) -> Iterator[LocalServer]:
        """Serve in a background thread for the duration of the block."""
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


class _QuietServer(ThreadingHTTPServer):
    """Daemon handler threads; clients that hang up early (timeouts) are not errors."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore broken connections."""


def _file_headers(path: Path) -> dict[str, str]:
    """Content-Type by file extension."""
    types = {
        ".xml": "application/xml",
        ".gz": "application/gzip",
        ".html": "text/html; charset=utf-8",
        ".txt": "text/plain",
        ".json": "application/json",
    }
    return {"Content-Type": types.get(path.suffix, "application/octet-stream")}


def _make_handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `server`."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            recorded = Recorded(
                method=self.command,
                path=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            self._send(server.answer(recorded))

        def _send(self, reply: Reply) -> None:
            if reply.chunks <= 1 and reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if reply.chunked or reply.stream is not None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self._write_body(reply)

        def _write_body(self, reply: Reply) -> None:
            if reply.stream is not None:
                for piece in reply.stream():
                    time.sleep(reply.delay)
                    self._write(piece, chunked=True)
                self.wfile.write(b"0\r\n\r\n")
                return
            size = max(-(-len(reply.body) // max(reply.chunks, 1)), 1)
            for start in range(0, len(reply.body), size):
                self._write(reply.body[start : start + size], reply.chunked)
                if reply.chunks > 1:
                    time.sleep(reply.delay)
            if reply.chunked:
                self.wfile.write(b"0\r\n\r\n")

        def _write(self, data: bytes, chunked: bool) -> None:
            if chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            self.wfile.write(data)
            self.wfile.flush()

    return _Handler
