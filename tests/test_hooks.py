"""Invalid answers stop generation in the pre-generation hook, before any file is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bakery import template_dir

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
        {"supabase_project_ref": "ABCDEFGHIJKLMNOPQRST"},
        "supabase_project_ref 'ABCDEFGHIJKLMNOPQRST'",
    ),
    ({"supabase_project_ref": "short"}, "has the wrong shape"),
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
