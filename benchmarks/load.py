"""HTTP load from a separate process: wrk when installed, else a Python client (httptools).

`run_load` spreads requests over a list of profile ids and returns throughput, p50/p99 latency
and errors (socket errors, timeouts and non-2xx answers). The Python fallback is itself a
separate process: `python -m benchmarks.load URL_PREFIX IDS_FILE CONNECTIONS SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

import httptools

uvloop: ModuleType | None
try:  # uvicorn's own event loop, installed with the generated project's uvicorn[standard]
    import uvloop
except ImportError:  # the plain asyncio loop is slower, not wrong
    uvloop = None

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
PYTHON_LOADER = "python-httptools"
TIMEOUT = 10.0  # seconds, as wrk's --timeout


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def loader() -> str:
    """The load generator this machine has: `wrk`, else the Python one below."""
    return "wrk" if shutil.which("wrk") else PYTHON_LOADER


def run_load(
    prefix: str, ids: Sequence[str], *, connections: int, seconds: float, workdir: Path
) -> LoadResult:
    """Request `prefix + id` for `seconds` over `connections` keep-alive connections."""
    if loader() == "wrk":
        return _wrk(prefix, ids, connections=connections, seconds=seconds, workdir=workdir)
    return run_python_load(prefix, ids, connections=connections, seconds=seconds, workdir=workdir)


def run_python_load(
    prefix: str, ids: Sequence[str], *, connections: int, seconds: float, workdir: Path
) -> LoadResult:
    """`run_load` on a machine without wrk: the loader below, in a process of its own."""
    ids_file = workdir / "ids.json"
    ids_file.write_text(json.dumps(list(ids)))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.load",
            prefix,
            str(ids_file),
            str(connections),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return LoadResult(**json.loads(out.stdout))


def _wrk(
    prefix: str, ids: Sequence[str], *, connections: int, seconds: float, workdir: Path
) -> LoadResult:
    host, _, path = prefix.partition("://")[2].partition("/")
    script = workdir / "profiles.lua"
    quoted = ", ".join(f'"/{path}{item}"' for item in ids)
    script.write_text(
        f"local paths = {{{quoted}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format("GET", paths[(n % #paths) + 1])\n'
        "end\n"
    )
    duration = max(1, round(seconds))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            f"{TIMEOUT:g}s",
            "--latency",
            "-s",
            str(script),
            f"http://{host}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out, connections=connections, seconds=float(duration))


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(out: str, *, connections: int, seconds: float) -> LoadResult:
    """Read wrk's `--latency` report."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{out}")
        return match

    requests = int(find(r"(\d+) requests in")[1])
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0) + (
        int(non_2xx[1]) if non_2xx else 0
    )
    return LoadResult(
        tool="wrk",
        connections=connections,
        seconds=seconds,
        requests=requests,
        errors=errors,
        rps=float(find(r"Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)\s*$")[1]),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)\s*$")[1]),
    )


async def _python_load(
    prefix: str, ids: Sequence[str], connections: int, seconds: float
) -> LoadResult:
    """`connections` keep-alive users, each one request in flight at a time, as wrk runs them."""
    scheme, _, rest = prefix.partition("://")
    if scheme != "http":
        raise ValueError(f"the Python loader speaks plain http only, not {prefix!r}")
    authority, _, path = rest.partition("/")
    host, _, port = authority.rpartition(":")
    requests = [f"GET /{path}{item} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode() for item in ids]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def user(offset: int) -> None:
        nonlocal errors
        n = offset
        connection: _Connection | None = None
        while time.perf_counter() < deadline:
            n += 1
            start = time.perf_counter()
            try:
                if connection is None or connection.closed:
                    connection = await asyncio.wait_for(_Connection.open(host, int(port)), TIMEOUT)
                status = await asyncio.wait_for(
                    connection.request(requests[n % len(requests)]), TIMEOUT
                )
                if status >= 400:
                    errors += 1
            except (OSError, TimeoutError, httptools.HttpParserError):
                errors += 1
                if connection is not None:
                    connection.close()
                connection = None
            latencies.append((time.perf_counter() - start) * 1e3)
        if connection is not None:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)
    return LoadResult(
        tool=PYTHON_LOADER,
        connections=connections,
        seconds=round(elapsed, 3),
        requests=count,
        errors=errors,
        rps=count / elapsed,
        p50_ms=latencies[count // 2] if count else 0.0,
        p99_ms=latencies[min(count - 1, int(count * 0.99))] if count else 0.0,
    )


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: send a request, resolve with the response's status.

    httptools (the C parser uvicorn uses) reads the responses, so a Python loader keeps up with
    a server on the same two cores; the body is read and dropped.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        """Connect to `host:port`."""
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio and uvloop both set TCP_NODELAY on their TCP transports.
        self.transport = cast(asyncio.Transport, transport)

    def request(self, raw: bytes) -> asyncio.Future[int]:
        assert self.transport is not None, "not connected"
        assert self.waiter is None, "one request in flight at a time"
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if not self.parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        self.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


def main(argv: Sequence[str]) -> None:
    """Entry point of the fallback load process; prints a `LoadResult` as JSON."""
    prefix, ids_file, connections, seconds = argv
    ids = json.loads(Path(ids_file).read_text())
    run = _python_load(prefix, ids, int(connections), float(seconds))
    result = uvloop.run(run) if uvloop is not None else asyncio.run(run)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
