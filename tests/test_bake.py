"""Baked projects render completely, pass their own lint and tests, and keep the one way."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bake

# Jinja left unrendered; GitHub Actions' `${{ ... }}` and `.cookiecutter.json` are meant to stay.
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#|(?<!\.)cookiecutter\.")
ANSWER_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "supabase-py312": {
        "project_name": "Tom's Café API",
        "project_slug": "billing_api",
        "description": 'Bills "customers" & friends',
        "python_version": "3.12",
        "database_provider": "supabase",
        "supabase_project_ref": "abcdefghijklmnopqrst",
        "include_pages": False,
        "task_engine": "none",
        "ci_provider": "gitlab",
    },
    "long-slug-py313-pages-only": {
        "project_name": "Page Intelligence Service",
        "project_slug": "zeta_page_intelligence_service_for_xyzwv",  # 40 chars, after "tests"
        "python_version": "3.13",
        "include_sitemaps": False,
        "include_places": False,
        "task_engine": "rabbitmq",
        "ci_provider": "none",
        "deploy_target": "none",
    },
    "no-workloads": {
        "project_slug": "bare_service",
        "include_sitemaps": False,
        "include_places": False,
        "include_pages": False,
        "task_engine": "none",
        "deploy_target": "none",
    },
}
"""Tier 3: each set's generated test suite runs in full against the real PostgreSQL."""


# The generated pooler suite (a real pgbouncer, a TLS PostgreSQL: about 50 s) runs for one set.
POOLER_ANSWER_SET = "defaults"


def text_files(project: Path) -> list[Path]:
    """Every file of a baked project that is text."""
    return [
        path
        for path in sorted(project.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def unrendered(project: Path) -> list[str]:
    """`path:line: text` of every line of a bake that still holds Jinja."""
    return [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in text_files(project)
        if "sessionlint" not in path.parts  # copied verbatim by design
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if LEFTOVER.search(line)
    ]


@pytest.mark.parametrize("answers", ANSWER_SETS.values(), ids=ANSWER_SETS.keys())
def test_every_placeholder_renders(bake: Bake, answers: dict[str, Any]) -> None:
    project = bake(**answers)
    slug = project.name
    assert (project / "src" / slug / "db" / "session.py").is_file()
    assert unrendered(project) == []
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == slug.replace("_", "-")
    if "python_version" in answers:
        assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    if "description" in answers:
        assert pyproject["project"]["description"] == answers["description"]


def test_provider_sets_the_ssl_default(bake: Bake) -> None:
    settings = (bake() / "src/my_service/settings.py").read_text()
    assert 'db_ssl_mode: SslMode = "disable"' in settings
    supabase = bake(
        project_slug="sb", database_provider="supabase", supabase_project_ref="abcdefghijklmnopqrst"
    )
    text = (supabase / "src/sb/settings.py").read_text()
    assert 'db_ssl_mode: SslMode = "require"' in text
    assert 'supabase_project_ref: str | None = "abcdefghijklmnopqrst"' in text
    assert "SUPABASE_PROJECT_REF=abcdefghijklmnopqrst" in (supabase / ".env.example").read_text()


@pytest.mark.parametrize(("name", "answers"), ANSWER_SETS.items(), ids=ANSWER_SETS.keys())
def test_baked_project_passes_lint_and_tests(
    bake: Bake,
    in_project: Callable[..., Any],
    machine_database_url: str,
    name: str,
    answers: dict[str, Any],
) -> None:
    project = bake(**answers)
    in_project(project, "ruff", "check", ".")
    in_project(project, "ruff", "format", "--check", ".")
    in_project(project, "mypy")
    selection = [] if name == POOLER_ANSWER_SET else ["-m", "not pooler"]
    result = in_project(
        project,
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *selection,
        env={"TEST_DATABASE_URL": machine_database_url},
        # A guard against a hang, not a speed limit: the defaults suite (about 850 tests, the
        # pooler's included) took 5 min alone on a slow 2-core machine, past 10 beside CI's
        # other worker.
        timeout=1800,
    )
    assert " passed" in result.stdout
    assert " failed" not in result.stdout
