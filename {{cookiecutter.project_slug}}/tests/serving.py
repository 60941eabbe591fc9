"""Run the production `start` sub-command as a real process, as the Dockerfile does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "{{ cookiecutter.project_slug }}"
START_ARGS = ("-m", PACKAGE, "start")
"""The production command, `python -m <package> start`: the deployment files run it."""
{%- if cookiecutter.task_engine != "none" %}
WORKER_ARGS = ("-m", "taskiq", "worker", f"{PACKAGE}.worker:broker")
"""The job worker, `python -m taskiq worker <package>.worker:broker`: the tests and deployments."""
{%- endif %}

# Settings the service must not inherit from the test runner's environment.
_SCRUBBED_PREFIXES = ("DB_", "SUPABASE_")
_SCRUBBED = frozenset(
    {"DATABASE_URL", "MIGRATIONS_DATABASE_URL", "HOST", "PORT", "WEB_CONCURRENCY", "LOG_LEVEL"}
    | {"ENVIRONMENT", "API_KEYS", "API_DOCS", "CORS_ORIGINS", "TRUSTED_HOSTS", "JOB_RATE_LIMIT"}
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_environment(database_url: URL | None, **settings: str) -> dict[str, str]:
    """The runner's environment without database settings, plus `DATABASE_URL` and `settings`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    if database_url is not None:
        env["DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    env.update({"DB_SSL_MODE": "disable", "LOG_LEVEL": "WARNING", **settings})
    return env


@dataclass
class Service:
    """A running `start` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        """What the service wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def running_service(
    workdir: Path,
    database_url: URL,
    settings: Mapping[str, str] | None = None,
    *,
    startup_timeout: float = 30.0,
) -> Iterator[Service]:
    """Start `python -m <package> start` on a free port; yield once `/health` answers; stop it.

    `workdir` is the process's working directory (so no developer `.env` is read) and holds
    its log. `settings` are extra environment variables (`{"WEB_CONCURRENCY": "2"}`, ...).
    """
    port = free_port()
    log = workdir / f"service-{port}.log"
    command = [sys.executable, *START_ARGS, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=service_environment(database_url, **(settings or {})),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_up(service, startup_timeout)
        yield service
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_up(service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"`start` exited with {service.process.returncode}:\n{service.output()[-4000:]}"
            )
        try:
            if httpx.get(f"{service.base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"`start` did not answer within {timeout} s:\n{service.output()[-4000:]}")
