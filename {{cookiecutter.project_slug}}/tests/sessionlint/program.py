"""Write a small multi-module program to a directory and run sessionlint on it in-process."""

import textwrap
from pathlib import Path

from sessionlint.config import Config
from sessionlint.events import Event
from sessionlint.runner import RunResult, run


def write(root: Path, files: dict[str, str]) -> None:
    """Create each file (dedented) under root, with the parent directories."""
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def program(root: Path, files: dict[str, str], config: Config | None = None) -> RunResult:
    """Write the files and analyze the whole tree as one program."""
    write(root, files)
    return run([root], config or Config(), root)


def findings(result: RunResult) -> set[tuple[str, int, str]]:
    """(relpath, line, code) of every unsuppressed finding."""
    return {(e.relpath, e.line, e.code or "") for e in result.findings}


def finding(result: RunResult, relpath: str, line: int) -> Event:
    """The one finding reported at relpath:line."""
    (event,) = [e for e in result.findings if (e.relpath, e.line) == (relpath, line)]
    return event


def sources(result: RunResult) -> dict[str, tuple[str, str]]:
    """Inferred name -> (kind, why)."""
    return {s.qualname: (s.kind, s.why) for s in result.sources}
