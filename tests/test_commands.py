"""The generated README's commands, exactly as a newcomer runs them: `make test` and `make run`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.bakery import CACHE, bake_into
from tests.conftest import Bake, run


def failure_report(result: subprocess.CompletedProcess[str]) -> str:
    """The failing part of a pytest run's output: from its first failure or error section on."""
    output = result.stdout
    for marker in ("= FAILURES =", "= ERRORS =", "short test summary"):
        if marker in output:
            output = output[output.index(marker) - 40 :]
            break
    return output[-20000:] + "\n--- stderr\n" + result.stderr[-2000:]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, object]:
    """GET a JSON resource; (status, body), or (0, error) while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError as error:
        return 0, str(error)


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    """A default bake whose `.venv` is created by its own Makefile, once for this module.

    It lives under `.bakes/`, not pytest's basetemp: run as root (as in CI), the embedded
    PostgreSQL runs as an unprivileged user that must reach the project's `.venv`, and every
    new pytest process resets the basetemp tree to mode 0700.
    """
    CACHE.mkdir(exist_ok=True)
    parent = Path(tempfile.mkdtemp(prefix="readme-", dir=CACHE))
    parent.chmod(0o755)
    try:
        yield bake_into(parent)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


# The pooler suite runs once, in test_bake.py; here it would only repeat it.
NOT_POOLER = {"PYTEST_ARGS": '-m "not pooler"'}


def test_make_test_on_the_embedded_database(project: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    env.update(NOT_POOLER)
    result = subprocess.run(
        ["make", "test"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, failure_report(result)
    assert " passed" in result.stdout
    assert " failed" not in result.stdout


def test_make_test_on_the_machine_database(project: Path, machine_database_url: str) -> None:
    env = {"TEST_DATABASE_URL": machine_database_url, **NOT_POOLER}
    result = run(["make", "test"], cwd=project, env=env)
    assert " passed" in result.stdout


def test_make_lint(project: Path) -> None:
    run(["make", "lint"], cwd=project)


def test_make_help_lists_the_tasks(project: Path) -> None:
    listed = run(["make", "help"], cwd=project).stdout
    for task in ("run", "test", "lint", "migrate"):
        assert f"make {task} " in listed


def test_make_run_serves_health_db(project: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    server = subprocess.Popen(
        ["make", "run"],
        cwd=project,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        status, body = get(f"http://127.0.0.1:{port}/health/db")
        while status != 200 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.5)
            status, body = get(f"http://127.0.0.1:{port}/health/db")
        profiles = get(f"http://127.0.0.1:{port}/api/v1/profiles")[0]
    finally:
        output = stop(server)
    assert (status, body) == (200, {"status": "ok"}), output
    assert profiles == 200, output
    assert "Application startup complete" in output


def stop(server: subprocess.Popen[str]) -> str:
    """Interrupt the server's process group as Ctrl+C would; return everything it printed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGINT)
    try:
        output, _ = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        output, _ = server.communicate()
    return output


def test_bake_fixture_is_independent(bake: Bake) -> None:
    assert bake().name == "my_service"
