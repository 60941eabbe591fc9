"""Invalid answers stop generation in the pre-generation hook, before any file is written."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bakery import ROOT, template_dir
from tests.conftest import documented_commands

INVALID = [
    ({"project_slug": "1service"}, "project_slug '1service' is not a valid Python package name"),
    (
        {"project_slug": "my-service"},
        "project_slug 'my-service' is not a valid Python package name",
    ),
    ({"project_slug": "class"}, "project_slug 'class' is not a valid Python package name"),
    ({"project_slug": "json"}, "project_slug 'json' would shadow an existing module"),
    ({"project_slug": "x" * 41}, "is longer than 40 characters"),
    ({"project_name": "   ", "project_slug": "svc"}, "project_name is empty"),
    ({"project_name": 'The "Best" API'}, "may not contain double quotes"),
    # Choice answers are refused by cookiecutter itself, before the hook (the hook checks too).
    ({"python_version": "3.9"}, "3.9 provided for choice variable python_version"),
    ({"python_version": "4.0"}, "4.0 provided for choice variable python_version"),
    ({"database_provider": "mysql"}, "mysql provided for choice variable database_provider"),
    (
        {"database_provider": "supabase", "supabase_project_ref": "ABCDEFGHIJKLMNOPQRST"},
        "supabase_project_ref 'ABCDEFGHIJKLMNOPQRST' has the wrong shape",
    ),
    ({"database_provider": "supabase", "supabase_project_ref": "short"}, "has the wrong shape"),
    # Unsupported combination: a Supabase project ref with a plain PostgreSQL provider.
    (
        {"supabase_project_ref": "abcdefghijklmnopqrst"},
        "is set but database_provider is 'postgres'",
    ),
    ({"task_engine": "celery"}, "celery provided for choice variable task_engine"),
    ({"ci_provider": "jenkins"}, "jenkins provided for choice variable ci_provider"),
    ({"deploy_target": "heroku"}, "heroku provided for choice variable deploy_target"),
    ({"include_places": "maybe"}, "could not be converted to a boolean"),
    ({"author_email": "not-an-email"}, "author_email 'not-an-email' is not an email address"),
]


def cookiecutter_cli(output_dir: Path, answers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the cookiecutter command line as a user would."""
    pairs = [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(output_dir),
            str(template_dir()),
            *pairs,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(("answers", "reason"), INVALID, ids=[str(a) for a, _ in INVALID])
def test_invalid_answer_stops_generation_with_a_reason(
    tmp_path: Path, answers: dict[str, str], reason: str
) -> None:
    result = cookiecutter_cli(tmp_path, answers)
    assert result.returncode != 0
    assert reason in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    result = cookiecutter_cli(
        tmp_path, {"project_slug": "my-svc", "supabase_project_ref": "x", "author_email": "a"}
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 3, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_valid_answers_generate(tmp_path: Path) -> None:
    result = cookiecutter_cli(
        tmp_path,
        {
            "project_name": "Billing API",
            "database_provider": "supabase",
            "supabase_project_ref": "abcdefghijklmnopqrst",
        },
    )
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["billing_api"]


def replay(tmp_path: Path, answers: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """Generate from a replay file, as `cookiecutter --replay-file` does for an update."""
    replay_file = tmp_path / "answers.json"
    replay_file.write_text(json.dumps({"cookiecutter": answers}))
    output = tmp_path / "out"
    output.mkdir()
    return subprocess.run(
        [
            *(sys.executable, "-m", "cookiecutter", "--replay-file", str(replay_file)),
            *("-o", str(output), str(template_dir())),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def recorded_answers(tmp_path: Path, **answers: str) -> dict[str, object]:
    """Bake with `answers` and return the answers the project recorded."""
    result = cookiecutter_cli(tmp_path / "first", answers)
    assert result.returncode == 0, result.stderr
    (project,) = (tmp_path / "first").iterdir()
    recorded: dict[str, object] = json.loads((project / ".cookiecutter.json").read_text())[
        "cookiecutter"
    ]
    return recorded


def test_replay_skips_cookiecutter_checks_but_not_the_hook(tmp_path: Path) -> None:
    """Cookiecutter validates choices only on the command line; the hook also guards replays."""
    answers = recorded_answers(tmp_path, project_slug="svc")
    answers |= {"task_engine": "celery", "include_pages": "sometimes"}
    result = replay(tmp_path, answers)
    assert result.returncode != 0
    assert "ERROR: include_pages must be yes or no" in result.stderr
    unknown = "ERROR: task_engine 'celery' is unknown: choose one of redis, rabbitmq, none."
    assert unknown in result.stderr
    assert list((tmp_path / "out").iterdir()) == [], "nothing may be written"


def test_recorded_answers_replay_to_the_same_project(tmp_path: Path) -> None:
    """`.cookiecutter.json` is a replay file: regenerating from it gives an identical tree."""
    answers = recorded_answers(
        tmp_path, project_slug="svc", include_places="no", task_engine="none", ci_provider="gitlab"
    )
    assert answers["include_places"] is False
    assert (answers["task_engine"], answers["ci_provider"]) == ("none", "gitlab")
    result = replay(tmp_path, answers)
    assert result.returncode == 0, result.stderr
    first, second = tmp_path / "first" / "svc", tmp_path / "out" / "svc"
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert [f for f in files if (first / f).read_bytes() != (second / f).read_bytes()] == []


def test_the_documented_non_interactive_bake_works(tmp_path: Path) -> None:
    """docs/options.md's example command, run as written from a checkout of the template."""
    (command,) = documented_commands(ROOT / "docs" / "options.md", "--no-input")
    args = shlex.split(command)
    assert args[:3] == [".venv/bin/cookiecutter", "--no-input", "."]
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), ".", *args[3:]],
        cwd=template_dir(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "billing_api"
    assert not (project / "src" / "billing_api" / "places").exists()
    assert not (project / "tests" / "test_worker.py").exists()
