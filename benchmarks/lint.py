"""Figure `lint`: sessionlint `check` and `audit` on a ~30,000-line legacy corpus, on one core.

The corpus is the generated project's realistic legacy sample
(`tests/sessionlint/fixtures/legacy_app`: routers, services, schedulers, scripts, two engines)
copied into renamed packages (`app_00`, `scripts_00`, `app_01`, ...) until it reaches the wanted
size, each copy importing only itself, so whole-program inference has as many modules, imports
and session sources to resolve as a real codebase of that size. `check --no-config --strict` and
`audit --no-config` run as whole commands (interpreter start included, what a pre-commit hook
pays), pinned to one CPU, next to `ruff check` pinned to the same CPU with one thread.
Rates are per CPU-second of the command (user + system time of the child process), so that a
busy shared machine, which stretches the wall time of a pinned command, does not move them much;
the wall times are reported too. Target (issue 12): 30,000 lines under one second on one core,
i.e. at least 30,000 lines per CPU-second.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SAMPLE = Path("tests") / "sessionlint" / "fixtures" / "legacy_app"
"""Where the legacy sample sits in a baked project (and in the template's project folder)."""
TARGET_LINES = 30_000
QUICK_LINES = 3_000
RUFF_RULES = "F,B,ASYNC,TID"
_PACKAGES = ("app", "scripts")
_IMPORT = re.compile(rf"^(\s*(?:from|import)\s+)({'|'.join(_PACKAGES)})\b", re.MULTILINE)

Figures = dict[str, Any]


def python_lines(root: Path) -> tuple[int, int]:
    """Return (files, lines) of the .py files under root."""
    files = sorted(root.rglob("*.py"))
    return len(files), sum(len(path.read_bytes().splitlines()) for path in files)


def build_corpus(sample: Path, target: Path, lines: int) -> Figures:
    """Copy the sample's packages into target under numbered names until it has `lines` lines.

    Imports of the sample's own packages are rewritten to the copy's names; the sample's
    pyproject.toml (its FastAPI pin) is copied once to the corpus root.
    """
    _, per_copy = python_lines(sample)
    copies = max(1, math.ceil(lines / per_copy))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample / "pyproject.toml", target / "pyproject.toml")
    for index in range(copies):
        names = {package: f"{package}_{index:02d}" for package in _PACKAGES}

        def rename(match: re.Match[str], names: dict[str, str] = names) -> str:
            return match.group(1) + names[match.group(2)]

        for package, renamed in names.items():
            for source in sorted((sample / package).rglob("*.py")):
                destination = target / renamed / source.relative_to(sample / package)
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_text(_IMPORT.sub(rename, source.read_text("utf-8")), "utf-8")
    files, total = python_lines(target)
    return {"copies": copies, "files": files, "lines": total}


def one_cpu() -> int | None:
    """A CPU this process may run on (None where affinity cannot be set)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return min(os.sched_getaffinity(0))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    args: Sequence[str], env: dict[str, str], cwd: Path, cpu: int | None
) -> tuple[float, float]:
    """(wall, CPU) seconds of one command pinned to `cpu`; exit 0 or 1 (findings) only."""
    pin: Callable[[], None] | None = None
    if cpu is not None:

        def pin() -> None:
            os.sched_setaffinity(0, {cpu})

    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        list(args), env=env, cwd=cwd, capture_output=True, check=False, preexec_fn=pin
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return wall, _children_cpu() - cpu_before


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _count(payload: Any, key: str) -> int:
    items = payload.get(key, []) if isinstance(payload, dict) else payload
    return len(items)


def measure_corpus(
    corpus: Path, *, python: str, ruff: str, env: dict[str, str], rounds: int
) -> Figures:
    """Time check, audit and ruff on the corpus, interleaved round by round; return figures."""
    cpu = one_cpu()
    files, lines = python_lines(corpus)
    commands = {
        "check": [python, "-m", "sessionlint", "check", "--no-config", "--strict",
                  "--format", "json", "."],
        "audit": [python, "-m", "sessionlint", "audit", "--no-config", "--format", "json", "."],
        "ruff": [ruff, "check", "--no-cache", "--isolated", "--exit-zero", "--quiet",
                 "--select", RUFF_RULES, "."],
    }  # fmt: skip
    run_env = {**env, "RAYON_NUM_THREADS": "1"}
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, args in commands.items():
            wall, cpu_seconds = timed(args, run_env, corpus, cpu)
            walls[name].append(wall)
            cpus[name].append(cpu_seconds)
    check = subprocess.run(
        commands["check"], env=run_env, cwd=corpus, capture_output=True, text=True, check=False
    )
    audit = subprocess.run(
        commands["audit"], env=run_env, cwd=corpus, capture_output=True, text=True, check=False
    )
    seconds = {name: _median(values) for name, values in cpus.items()}
    wall = {name: _median(values) for name, values in walls.items()}
    rate = {name: lines / value for name, value in seconds.items()}
    return {
        "files": files,
        "lines": lines,
        "rounds": rounds,
        "cpu": cpu,
        "ruff_rules": RUFF_RULES,
        "findings": _count(json.loads(check.stdout), "findings"),
        "sources": _count(json.loads(audit.stdout), "sources"),
        "check_seconds": round(seconds["check"], 3),
        "check_wall_seconds": round(wall["check"], 3),
        "check_lines_per_s": round(rate["check"], 1),
        "audit_seconds": round(seconds["audit"], 3),
        "audit_wall_seconds": round(wall["audit"], 3),
        "audit_lines_per_s": round(rate["audit"], 1),
        "ruff_seconds": round(seconds["ruff"], 3),
        "ruff_wall_seconds": round(wall["ruff"], 3),
        "ruff_lines_per_s": round(rate["ruff"], 1),
        "check_to_ruff": round(rate["check"] / rate["ruff"], 3),
        "target_lines_per_s": float(TARGET_LINES),
    }


def bench_lint(project: Path, env: dict[str, str], *, quick: bool) -> Figures:
    """Build the corpus from the bake's legacy sample in a temp dir and measure it."""
    sample = project / SAMPLE
    expected = json.loads((sample / "expected.json").read_text("utf-8"))
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as directory:
        corpus = Path(directory) / "corpus"
        built = build_corpus(sample, corpus, QUICK_LINES if quick else TARGET_LINES)
        figures = measure_corpus(
            corpus,
            python=sys.executable,
            ruff=str(Path(sys.executable).parent / "ruff"),
            env=env,
            rounds=1 if quick else 3,
        )
    figures["copies"] = built["copies"]
    figures["expected_findings"] = built["copies"] * len(expected["findings"])
    figures["expected_sources"] = built["copies"] * len(expected["sources"])
    return figures


def rows(figures: Figures) -> list[tuple[str, str, str, str]]:
    """The lint figure's rows of the `make bench` table."""
    lint = figures["lint"]
    lines = f"{lint['lines']:,}"
    return [
        (
            f"sessionlint check, {lines} lines, 1 CPU",
            f"{lint['check_lines_per_s']:,.0f} lines/s ({lint['check_seconds']} s CPU, "
            f"{lint['check_wall_seconds']} s wall; ruff {lint['ruff_lines_per_s']:,.0f} lines/s)",
            f"{lint['check_to_ruff']} of ruff; {lint['findings']}/{lint['expected_findings']} "
            "findings",
            f">= {TARGET_LINES:,} lines/s",
        ),
        (
            f"sessionlint audit, {lines} lines, 1 CPU",
            f"{lint['audit_lines_per_s']:,.0f} lines/s ({lint['audit_seconds']} s CPU, "
            f"{lint['audit_wall_seconds']} s wall)",
            f"{lint['sources']}/{lint['expected_sources']} sources",
            f">= {TARGET_LINES:,} lines/s",
        ),
    ]
