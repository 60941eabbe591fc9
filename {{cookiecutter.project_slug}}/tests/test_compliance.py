"""The one way to the database, checked by all three layers on this code base.

1. ruff's banned-api (TID251): driver imports, engine and session-factory constructors.
2. import-linter: the layers, and who may import the engine factory.
3. sessionlint: calls, scopes and transactions that imports cannot show.

Each layer also runs on a known-bad sample, so a layer that silently stops firing fails here
(sessionlint's own samples live in tests/sessionlint/fixtures).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sessionlint.cli import main as sessionlint

from tests.serving import PACKAGE

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(
    args: list[str], cwd: Path = ROOT, src: Path = ROOT / "src"
) -> subprocess.CompletedProcess[str]:
    """Run a tool of this environment with `src` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "400"}  # no wrapped report lines
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def ruff_banned_api(*paths: str) -> subprocess.CompletedProcess[str]:
    """Run only ruff's banned-api rule with this project's configuration."""
    config = str(ROOT / "pyproject.toml")
    command = [sys.executable, "-m", "ruff", "check", "--select", "TID251", "--no-cache", "-q"]
    command += ["--output-format", "concise"]
    return run([*command, "--config", config, *paths])


def lint_imports(cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run import-linter's contracts from `cwd`'s pyproject.toml on `cwd`'s src/."""
    return run([str(BIN / "lint-imports"), "--no-cache", "--no-logo"], cwd=cwd, src=cwd / "src")


def test_ruff_banned_api_is_clean() -> None:
    result = ruff_banned_api(".")
    assert result.returncode == 0, result.stdout


def test_ruff_banned_api_fires(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import asyncpg\n"
        "from sqlalchemy.ext.asyncio import create_async_engine as make_engine\n"
        "import sqlalchemy.orm as orm\n"
        "factory = orm.sessionmaker()\n"
    )
    result = ruff_banned_api(str(sample))
    reported = {line.split(":")[1] for line in result.stdout.splitlines() if "TID251" in line}
    assert reported == {"1", "2", "4"}, result.stdout


def test_import_contracts_hold() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_contracts_fire(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src" / PACKAGE, tmp_path / "src" / PACKAGE)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    leak = tmp_path / "src" / PACKAGE / "profiles" / "leak.py"
    leak.write_text(f'from {PACKAGE}.db.engine import build_engine\n\n__all__ = ["build_engine"]\n')
    result = lint_imports(cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{PACKAGE}.profiles.leak -> {PACKAGE}.db.engine" in result.stdout


def test_sessionlint_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    status = sessionlint(["check", str(ROOT)])
    assert status == 0, capsys.readouterr().out
