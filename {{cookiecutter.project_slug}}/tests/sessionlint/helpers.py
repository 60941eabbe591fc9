"""Shared helpers for the sessionlint tests."""

import re
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SRC = Path(__file__).resolve().parents[2] / "src"
_EXPECT_RE = re.compile(r"#\s*expect:\s*(SL\d{3}(?:\s*,\s*SL\d{3})*)")


def expected_markers(root: Path) -> set[tuple[str, int, str]]:
    """Collect (relpath, line, code) from every ``# expect:`` marker under root."""
    markers: set[tuple[str, int, str]] = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = _EXPECT_RE.search(line)
            if match:
                for code in match.group(1).split(","):
                    markers.add((rel, number, code.strip()))
    return markers


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sessionlint`` in a subprocess."""
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "sessionlint", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        timeout=60,
    )
