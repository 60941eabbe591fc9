"""Helpers shared by the benchmark stages: processes, ports, waiting, statistics, the database.

This module runs inside the generated projects' venv (it imports asyncpg): the benchmarks folder
is the one place of the template repository where the raw driver is used, and nothing in it is
generated into a project.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Context:
    """Where the benchmark runs: the bake, its package, the database server, the mode."""

    project: Path
    package: str
    server_url: str
    """A PostgreSQL URL (libpq form) on which databases may be created and dropped."""
    database: str
    """The throwaway database of this run."""
    quick: bool
    workdir: Path

    def url(self, database: str | None = None, *, port: int | None = None) -> str:
        """The server URL pointed at `database` (this run's by default), optionally another port."""
        base, _, _ = self.server_url.rpartition("/")
        if port is not None:
            scheme, _, rest = base.partition("://")
            userinfo, _, hostport = rest.rpartition("@")
            host = hostport.rsplit(":", 1)[0]
            base = f"{scheme}://{userinfo + '@' if userinfo else ''}{host}:{port}"
        return f"{base}/{database or self.database}"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process: the bake's `src/` and this repo on the path."""
        path = os.pathsep.join([str(self.project / "src"), str(ROOT)])
        return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    """Block until something accepts connections on `host:port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


@contextlib.contextmanager
def background(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block; stop it (SIGTERM, then SIGKILL) after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_checked(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; raise with its output if it fails."""
    result = subprocess.run(
        list(args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    return result


def python_module(ctx: Context, module: str, *args: str) -> list[str]:
    """argv running `python -m module args` in the current (the projects') venv."""
    return [sys.executable, "-m", module, *args]


def median(values: Sequence[float]) -> float:
    """The median, for figures measured over several rounds."""
    return float(statistics.median(values))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


async def connect(url: str) -> asyncpg.Connection:
    """A raw connection (benchmark plumbing only: seeding, sampling, COPY)."""
    return await asyncpg.connect(url)


async def execute(url: str, *statements: str) -> None:
    """Run statements one by one on a fresh connection."""
    connection = await connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def rss_of(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
