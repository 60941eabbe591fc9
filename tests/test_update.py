"""A generated project can be updated from a newer template with the answers it recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from benchmarks.bakery import ROOT, template_dir
from tests.conftest import GIT_EMAIL, GIT_NAME, documented_commands, git, run


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


def test_the_documented_three_way_update_merges_template_and_project_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/updating.md's patch recipe, run as written: the user's edits and the template's meet."""
    repository = template_repository(tmp_path)
    git(repository, "tag", "v1")
    source = f"git+file://{repository}"
    home = tmp_path / "home"  # cookiecutter keeps its clones in ~/.cookiecutters
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    output = str(tmp_path / "out")
    extra = {"project_slug": "svc"}
    project = Path(
        cookiecutter(source, checkout="v1", no_input=True, output_dir=output, extra_context=extra)
    )
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baked")
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# My Service", "# My Service, our way", 1))
    git(project, "commit", "-qam", "our title")

    template_readme = repository / "{{cookiecutter.project_slug}}" / "README.md"
    template_readme.write_text(template_readme.read_text() + "\nA line from a newer template.\n")
    git(repository, "commit", "-qam", "newer template")
    git(repository, "tag", "v2")

    scratch = tmp_path / "scratch"
    # The docs' scratch directory first: the other values may themselves lie under /tmp.
    substitutions = {
        "/tmp/": f"{scratch}/",  # noqa: S108 (the path the docs use, replaced)
        "<template>": source,
        "<old tag>": "v1",
        "<new tag>": "v2",
        "<project_slug>": "svc",
    }
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **{
            f"GIT_{who}_{what}": value
            for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", GIT_NAME), ("EMAIL", GIT_EMAIL))
        },
    }
    for command in documented_commands(ROOT / "docs" / "updating.md", "git apply --3way"):
        for placeholder, value in substitutions.items():
            command = command.replace(placeholder, value)
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=project,
            env=env,
            input="y\n" * 4,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"

    merged = readme.read_text()
    assert merged.startswith("# My Service, our way\n")
    assert merged.endswith("A line from a newer template.\n")
