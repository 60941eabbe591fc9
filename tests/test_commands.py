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
import tomllib
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


FIRST_INSTALLS: dict[Path, subprocess.CompletedProcess[str]] = {}
"""What the first `make install` of each module bake printed (it bootstraps uv and locks)."""


def bootstrapped_uv(project: Path) -> Path:
    """The uv that the bake's first `make install` put into its own bootstrap directory."""
    return project.parent / "uv-bootstrap" / "bin" / "uv"


def without_uv_on_path() -> str:
    """PATH minus every directory holding a `uv`, as on a machine that never installed it."""
    return os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "uv").exists()
    )


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    """A default bake whose `.venv` is created by its own Makefile, once for this module.

    The first `make install` runs on a PATH without uv, with a bootstrap directory of its own,
    so it installs uv with pip, resolves uv.lock and installs from it (`uv sync --locked`).
    It lives under `.bakes/`, not pytest's basetemp: run as root (as in CI), the embedded
    PostgreSQL runs as an unprivileged user that must reach the project's `.venv`, and every
    new pytest process resets the basetemp tree to mode 0700.
    """
    CACHE.mkdir(exist_ok=True)
    parent = Path(tempfile.mkdtemp(prefix="readme-", dir=CACHE))
    parent.chmod(0o755)
    try:
        baked = bake_into(parent)
        env = {"PATH": without_uv_on_path(), "UV_BOOTSTRAP": str(parent / "uv-bootstrap")}
        FIRST_INSTALLS[baked] = run(["make", "install"], cwd=baked, env=env, timeout=900)
        yield baked
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_first_make_install_bootstraps_uv_and_commits_to_a_lock(project: Path) -> None:
    first = FIRST_INSTALLS[project]
    assert "uv not found: installing it with pip" in first.stdout
    assert "No uv.lock yet: resolving one. Commit it: git add uv.lock" in first.stdout
    lock = tomllib.loads((project / "uv.lock").read_text())
    locked = {package["name"] for package in lock["package"]}
    assert {"my-service", "fastapi", "sqlalchemy", "pytest", "ruff", "mypy"} <= locked
    # The environment is exactly the lock: a locked sync finds nothing to install or remove.
    uv = str(bootstrapped_uv(project))
    synced = run([uv, "sync", "--locked"], cwd=project)
    changes = [line for line in synced.stderr.splitlines() if line.startswith((" + ", " - "))]
    assert changes == [], synced.stderr
    assert "Nothing to be done" in run(["make", "install"], cwd=project).stdout
    # The generated .gitignore keeps uv.lock in the commit.
    with tempfile.TemporaryDirectory() as repository:
        shutil.copy(project / ".gitignore", Path(repository) / ".gitignore")
        (Path(repository) / "uv.lock").touch()
        subprocess.run(["git", "init", "-q"], cwd=repository, check=True)
        ignored = subprocess.run(["git", "check-ignore", "-q", "uv.lock"], cwd=repository)
        assert ignored.returncode == 1, "the generated .gitignore ignores uv.lock"


def test_install_refuses_a_pyproject_that_left_the_lock(project: Path) -> None:
    pyproject, lock = project / "pyproject.toml", project / "uv.lock"
    original, locked = pyproject.read_text(), lock.read_text()
    assert '    "httpx>=' in original
    pyproject.write_text(original.replace('    "httpx>=', '    "six>=1.16",\n    "httpx>=', 1))
    try:
        refused = subprocess.run(
            ["make", "install"], cwd=project, capture_output=True, text=True, timeout=300
        )
        lock_after = lock.read_text()
    finally:
        pyproject.write_text(original)
    assert refused.returncode != 0
    error = " ".join(refused.stderr.split())  # uv wraps its messages to the terminal width
    assert "uv.lock` needs to be updated, but `--locked` was provided" in error
    assert "make lock (or make upgrade), then review and commit uv.lock" in refused.stdout
    assert lock_after == locked  # --locked never rewrites the lock
    run(["make", "install"], cwd=project)  # the restored pyproject matches the lock again


def locked_versions(project: Path) -> dict[str, str]:
    """Package name -> version, as the project's uv.lock pins them."""
    lock = tomllib.loads((project / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def installed_version(project: Path, distribution: str) -> str:
    """The version of `distribution` in the project's `.venv`."""
    code = f"from importlib.metadata import version; print(version({distribution!r}))"
    return run([".venv/bin/python", "-c", code], cwd=project).stdout.strip()


def test_make_lock_adds_only_the_edit_and_make_upgrade_moves_the_lock(project: Path) -> None:
    pyproject, lock = project / "pyproject.toml", project / "uv.lock"
    original, locked = pyproject.read_text(), lock.read_text()
    before = locked_versions(project)
    uv = str(bootstrapped_uv(project))
    try:
        # An older lock, as a project has after some weeks: httpx held back, then installed.
        run([uv, "lock", "--quiet", "--upgrade-package", "httpx==0.27.2"], cwd=project)
        run(["make", "install"], cwd=project)
        assert installed_version(project, "httpx") == "0.27.2"
        # `make upgrade` moves it to the newest version its range allows, and installs that.
        run(["make", "upgrade"], cwd=project)
        upgraded = locked_versions(project)
        assert upgraded["httpx"] == before["httpx"] != "0.27.2"
        assert installed_version(project, "httpx") == before["httpx"]
        # `make lock` after an edit adds what the edit asks for and moves nothing else.
        assert "tomli-w" not in upgraded
        edited = original.replace('    "httpx>=', '    "tomli-w>=1.0",\n    "httpx>=', 1)
        pyproject.write_text(edited)
        run(["make", "lock"], cwd=project)
        after = locked_versions(project)
        assert after.pop("tomli-w")
        assert after == upgraded
    finally:
        pyproject.write_text(original)
        lock.write_text(locked)
    run(["make", "install"], cwd=project)
    assert installed_version(project, "httpx") == before["httpx"]


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
    """`make test` with TEST_DATABASE_URL set. The whole suite already runs on this database in
    test_bake.py ([defaults], same code): here the database tests and the reference feature
    prove the command and the variable reach it."""
    env = {
        "TEST_DATABASE_URL": machine_database_url,
        "PYTEST_ARGS": '-m "not pooler" tests/db tests/profiles tests/test_main.py',
    }
    result = run(["make", "test"], cwd=project, env=env)
    assert " passed" in result.stdout
    assert " failed" not in result.stdout


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
