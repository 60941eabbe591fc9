"""Every kind of non-compliant database access is rejected by the checker, the project's compliance
test and its pre-commit hooks, at the right file and line; a clean bake passes all three."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import bake_into, commit_as_installed, git


@dataclass(frozen=True)
class Injection:
    """Code appended to (or written as) a file, and the finding it must produce."""

    path: str
    code: str
    offset: int  # line of the finding within `code`, 1-based
    rule: str


INJECTIONS = {
    "router": Injection(
        path="src/my_service/profiles/router.py",
        code=(
            "\n\nfrom my_service.db import task_session\n\n\n"
            '@router.get("/legacy")\n'
            "async def legacy() -> None:\n"
            '    """Opens its own session instead of taking the request\'s."""\n'
            "    async with task_session() as session:\n"
            "        await session.flush()\n"
        ),
        offset=9,
        rule="SL001",
    ),
    "service": Injection(
        path="src/my_service/profiles/service.py",
        code=(
            "\n\nasync def archive(session: AsyncSession) -> None:\n"
            '    """Commits behind the router\'s back."""\n'
            "    await session.commit()\n"
        ),
        offset=5,
        rule="SL003",
    ),
    "task": Injection(
        path="src/my_service/profiles/cleanup_tasks.py",
        code=(
            '"""Background work on profiles."""\n\n'
            "from sqlalchemy.ext.asyncio import AsyncSession\n\n\n"
            "async def refresh(profile_id: int) -> None:\n"
            '    """Opens its own session instead of task_session()."""\n'
            "    async with AsyncSession() as session:\n"
            "        await session.flush()\n"
        ),
        offset=8,
        rule="SL006",
    ),
    "script": Injection(
        path="scripts/backfill.py",
        code=(
            '"""A one-off script that talks to the driver directly."""\n\n'
            "import asyncio\n\n"
            "import asyncpg\n\n\n"
            "async def main() -> None:\n"
            '    """Connect by hand."""\n'
            '    await asyncpg.connect("postgresql://postgres@127.0.0.1/postgres")\n\n\n'
            "asyncio.run(main())\n"
        ),
        offset=5,
        rule="SL004",
    ),
}


@pytest.fixture(scope="module")
def clean_project(tmp_path_factory: pytest.TempPathFactory, tools_python: Path) -> Path:
    """A default bake under git whose .venv is the shared tools venv (as after `make install`)."""
    return commit_as_installed(bake_into(tmp_path_factory.mktemp("compliance")), tools_python)


@pytest.fixture
def project(clean_project: Path, tmp_path: Path) -> Path:
    """A private copy of the clean bake for one test."""
    copy = tmp_path / "project"
    shutil.copytree(clean_project, copy, symlinks=True)
    return copy


def attempt(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command that may fail, with the project's src/ importable."""
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        list(args), cwd=project, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def inject(project: Path, injection: Injection) -> str:
    """Apply the injection; return the `path:line:` the finding must carry."""
    target = project / injection.path
    target.parent.mkdir(parents=True, exist_ok=True)
    before = target.read_text() if target.exists() else ""
    target.write_text(before + injection.code)
    line = len(before.splitlines()) + injection.offset
    if before and not before.endswith("\n"):
        line -= 1
    return f"{injection.path}:{line}:"


def test_clean_bake_passes_every_hook_with_zero_changes(project: Path) -> None:
    result = attempt(project, ".venv/bin/pre-commit", "run", "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert git(project, "status", "--porcelain").stdout == ""


@pytest.mark.parametrize("kind", INJECTIONS)
def test_violation_is_rejected_at_its_line(project: Path, kind: str) -> None:
    injection = INJECTIONS[kind]
    where = inject(project, injection)

    checker = attempt(project, ".venv/bin/python", "-m", "sessionlint", "check")
    assert checker.returncode == 1, checker.stdout + checker.stderr
    assert any(
        line.startswith(where) and injection.rule in line for line in checker.stdout.splitlines()
    ), f"expected {where} {injection.rule} in:\n{checker.stdout}"

    pytest_run = attempt(
        project, ".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "tests/test_compliance.py",
    )  # fmt: skip
    assert pytest_run.returncode == 1, pytest_run.stdout
    assert where in pytest_run.stdout
    assert injection.rule in pytest_run.stdout

    git(project, "add", "-A")
    attempt(project, ".venv/bin/pre-commit", "install")
    commit = attempt(project, "git", "commit", "-qm", f"add a {kind} violation")
    assert commit.returncode != 0, "the pre-commit hook must reject the commit"
    output = commit.stdout + commit.stderr
    assert "sessionlint" in output
    assert f"{where}" in output, output
    assert injection.rule in output
    assert git(project, "log", "--oneline").stdout.count("\n") == 1, "nothing was committed"
