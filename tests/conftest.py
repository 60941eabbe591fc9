"""Fixtures for the template's own tests: bake projects, and run their tools in a shared venv."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from benchmarks.bakery import bake_into, tools_venv

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MACHINE_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

Bake = Callable[..., Path]


@pytest.fixture
def bake(tmp_path: Path) -> Bake:
    """Bake into this test's temporary directory."""

    def _bake(**answers: Any) -> Path:
        return bake_into(tmp_path, **answers)

    return _bake


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, and fail the test with that output if it fails."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


GIT_NAME, GIT_EMAIL = "Template Tests", "tests@example.com"
"""The identity of every commit the tests make (the machine may have none configured)."""


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git in `cwd` with the tests' identity; fail the test if it fails."""
    identity = ["-c", f"user.name={GIT_NAME}", "-c", f"user.email={GIT_EMAIL}"]
    return run(["git", *identity, *args], cwd=cwd)


def commit_as_installed(project: Path, tools_python: Path) -> Path:
    """Put a bake under git with the shared tools venv as its `.venv` (as after `make install`)."""
    (project / ".venv").symlink_to(tools_python.parent.parent)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baked")
    return project


def documented_commands(page: Path, marker: str) -> list[str]:
    """The `$ ` command lines of the console block of `page` that contains `marker`."""
    blocks = re.findall(r"```console\n(.*?)```", page.read_text(), re.DOTALL)
    (block,) = [block for block in blocks if marker in block]
    return [line.removeprefix("$ ") for line in block.splitlines() if line.startswith("$ ")]


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def machine_database_url() -> str:
    """A real PostgreSQL server for the generated projects' tests.

    `TEMPLATE_TEST_DATABASE_URL`, else the local server; skipped where none answers, never in CI.
    """
    url = os.environ.get("TEMPLATE_TEST_DATABASE_URL", MACHINE_DATABASE_URL)
    if not _reachable(url):
        message = f"no PostgreSQL answers at {urlsplit(url).netloc}"
        if IN_CI:
            pytest.fail(f"{message}; CI must provide one")
        pytest.skip(f"{message}; set TEMPLATE_TEST_DATABASE_URL to run this test")
    return url


@pytest.fixture(scope="session")
def tools_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Python of a venv holding every generated project's dependencies (cached in .bakes/).

    The default answers need all but the RabbitMQ broker's, which a second bake adds.
    """
    directory = tmp_path_factory.mktemp("deps")
    return tools_venv(
        bake_into(directory / "redis"), bake_into(directory / "rabbitmq", task_engine="rabbitmq")
    )


@pytest.fixture
def in_project(tools_python: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a module of the tools venv inside a baked project, its `src/` on the path."""

    def _run(
        project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        path = {"PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
        return run(
            [str(tools_python), "-m", *args],
            cwd=project,
            env={**path, **(env or {})},
            timeout=timeout,
        )

    return _run
