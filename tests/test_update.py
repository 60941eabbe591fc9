"""A generated project can be updated from a newer template with the answers it recorded."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

from benchmarks.bakery import template_dir
from tests.conftest import run

IDENTITY = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]


def git(cwd: Path, *args: str) -> None:
    """Run git with a fixed identity."""
    run(["git", *IDENTITY, *args], cwd=cwd)


def template_repository(tmp_path: Path) -> Path:
    """The template as a git repository, as cruft clones it."""
    repository = tmp_path / "template"
    shutil.copytree(template_dir(), repository)
    git(repository, "init", "-q")
    git(repository, "add", "-A")
    git(repository, "commit", "-qm", "template")
    return repository


def test_cruft_links_with_the_recorded_answers_and_applies_template_changes(
    tmp_path: Path,
) -> None:
    cruft = str(Path(sys.executable).parent / "cruft")
    repository = template_repository(tmp_path)
    extra = {"project_slug": "svc", "include_places": False}
    project = Path(
        cookiecutter(
            str(repository), no_input=True, output_dir=str(tmp_path / "out"), extra_context=extra
        )
    )
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baked")
    answers = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]

    context = json.dumps(answers)
    run([cruft, "link", str(repository), "--no-input", "--extra-context", context], cwd=project)
    run([cruft, "diff", "--exit-code"], cwd=project)  # the recorded answers rebuild this project

    readme = repository / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\nA line from a newer template.\n")
    git(repository, "commit", "-qam", "newer template")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "linked")
    run([cruft, "update", "--skip-apply-ask", "--allow-untracked-files"], cwd=project)
    assert (project / "README.md").read_text().endswith("A line from a newer template.\n")
    assert not (project / "src" / "svc" / "places").exists(), "answers kept through the update"
