"""Helpers shared by the benchmark stages: processes, ports, waiting, statistics, the database.

This module runs inside the generated projects' venv (it imports asyncpg): the benchmarks folder
is the one place of the template repository where the raw driver is used, and nothing in it is
generated into a project.
"""

from __future__ import annotations

import contextlib
import importlib
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


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until something accepts connections on `host:port` (or `process` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the process meant to listen on {port} exited ({process.returncode})"
            )
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
    """Resident set size of a process, in KiB (Linux); 0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of a process (children of all its threads, recursively; Linux)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError):
                children = [int(child) for child in (task / "children").read_text().split()]
                found += children
                pending += children
    return found


def log(message: str) -> None:
    """Progress on stderr; the table and JSON are the results."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Service:
    """A running uvicorn process: its base URL, process and log file."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def uvicorn_service(
    ctx: Context,
    name: str,
    target: str,
    extra: Mapping[str, str],
    *,
    database_url: str | None = None,
    defaults_only: bool = False,
    start_timeout: float = 30.0,
) -> Iterator[Service]:
    """Serve `target` with uvicorn, one worker (one process), no access log; stop it after.

    With `defaults_only`, the service sees none of this shell's variables that name one of its
    settings: it runs on its defaults plus the database, `extra` and a quiet log level.
    """
    port = free_port()
    args = [
        sys.executable, "-m", "uvicorn", target.format(package=ctx.package), "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = ctx.env()
    if defaults_only:
        fields = importlib.import_module(f"{ctx.package}.settings").Settings.model_fields
        env = {name: value for name, value in env.items() if name.lower() not in fields}
    env.update(
        DATABASE_URL=database_url or ctx.url(),
        APP_NAME=f"bench-{name}",
        BENCH_PACKAGE=ctx.package,
        LOG_LEVEL="WARNING",
        **extra,
    )
    log_file = ctx.workdir / f"{name}.log"
    with background(args, env=env, cwd=ctx.workdir, log=log_file) as process:
        wait_for_port(port, timeout=start_timeout, process=process)
        yield Service(f"http://127.0.0.1:{port}", process, log_file)


@contextlib.contextmanager
def uvicorn_server(
    ctx: Context,
    name: str,
    target: str,
    extra: Mapping[str, str],
    *,
    database_url: str | None = None,
) -> Iterator[str]:
    """Serve `target` with uvicorn (see `uvicorn_service`); yield its base URL."""
    with uvicorn_service(ctx, name, target, extra, database_url=database_url) as service:
        yield service.base
