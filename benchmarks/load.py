"""HTTP load from a separate process: wrk when installed, else a Python client (httpx).

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

import httpx

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


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
    """The load generator this machine has: `wrk` or `python-httpx`."""
    return "wrk" if shutil.which("wrk") else "python-httpx"


def run_load(
    prefix: str, ids: Sequence[str], *, connections: int, seconds: float, workdir: Path
) -> LoadResult:
    """Request `prefix + id` for `seconds` over `connections` keep-alive connections."""
    if loader() == "wrk":
        return _wrk(prefix, ids, connections=connections, seconds=seconds, workdir=workdir)
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
            "10s",
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
    socket = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(int(g) for g in socket.groups()) if socket else 0) + (
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
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + seconds

        async def user(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < deadline:
                n += 1
                start = time.perf_counter()
                try:
                    response = await client.get(prefix + ids[n % len(ids)])
                    if response.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - start) * 1e3)

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)
    return LoadResult(
        tool="python-httpx",
        connections=connections,
        seconds=round(elapsed, 3),
        requests=count,
        errors=errors,
        rps=count / elapsed,
        p50_ms=latencies[count // 2] if count else 0.0,
        p99_ms=latencies[min(count - 1, int(count * 0.99))] if count else 0.0,
    )


def main(argv: Sequence[str]) -> None:
    """Entry point of the fallback load process; prints a `LoadResult` as JSON."""
    prefix, ids_file, connections, seconds = argv
    ids = json.loads(Path(ids_file).read_text())
    result = asyncio.run(_python_load(prefix, ids, int(connections), float(seconds)))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
