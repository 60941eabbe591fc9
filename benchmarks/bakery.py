"""Bake the template and build the cached venv of the generated projects' dependencies.

Shared by the template's tests (`tests/conftest.py`) and the benchmarks, so both bake the same
way and reuse one venv under `.bakes/venv-<digest>` (keyed on Python and the requirements).
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bakes"


@functools.cache
def template_dir() -> Path:
    """The template as git sees it (tracked and new files, no caches or ignored files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout: bake the tree as it is
        return ROOT
    copy = Path(tempfile.mkdtemp(prefix="template-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def bake_into(output_dir: Path, **answers: Any) -> Path:
    """Bake the template with `answers` (defaults otherwise) and return the project directory."""
    return Path(
        cookiecutter(
            str(template_dir()), no_input=True, output_dir=str(output_dir), extra_context=answers
        )
    )


def project_requirements(project: Path) -> list[str]:
    """The baked project's runtime requirements and its dev group (uv's default), sorted."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return sorted(pyproject["project"]["dependencies"] + pyproject["dependency-groups"]["dev"])


def tools_venv(*projects: Path) -> Path:
    """Python of a venv holding the `projects`' dependencies, built once and cached in `.bakes/`.

    The projects are not installed: callers put a project's `src/` on `PYTHONPATH`, so one venv
    serves every bake whose requirements it holds. A file lock lets parallel callers share it.
    """
    requirements = sorted({req for project in projects for req in project_requirements(project)})
    digest = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:12]
    env_dir = CACHE / f"venv-{digest}"
    python = env_dir / "bin" / "python"
    CACHE.mkdir(exist_ok=True)
    with (CACHE / f"venv-{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (env_dir / ".complete").exists():
            shutil.rmtree(env_dir, ignore_errors=True)
            venv.create(env_dir, with_pip=True)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *requirements],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if installed.returncode != 0:
                raise RuntimeError(f"pip install failed in {env_dir}:\n{installed.stderr[-4000:]}")
            (env_dir / ".complete").touch()
    return python
