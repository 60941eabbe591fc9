"""The template's own Python (tests, benchmarks) meets the bar it sets for generated projects."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bakery import ROOT
from tests.conftest import run


def test_template_code_passes_ruff(tools_python: Path) -> None:
    ruff = str(tools_python.parent / "ruff")
    run([ruff, "check", "--no-cache", "tests", "benchmarks"], cwd=ROOT)
    run([ruff, "format", "--no-cache", "--check", "tests", "benchmarks"], cwd=ROOT)
