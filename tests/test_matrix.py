"""Tier 1: every supported combination of the answers that shape a project bakes clean.

The answers that add or remove files (the three workloads, the task engine, the CI provider and
the deploy target) are crossed in full: 144 projects. The answers that only change strings
(Python version, database provider, a 40-character slug) rotate through them, so every value of
every answer is baked.
Each project must render completely, keep exactly the files its answers ask for, and pass ruff,
ruff format, import-linter and sessionlint. One project per combination of the answers that
change Python code (workloads x task engine: 24) also runs `pre-commit run --all-files`
(mypy --strict included) and must come out with zero changes.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.bakery import bake_into
from tests.conftest import commit_as_installed, git, run
from tests.test_bake import text_files, unrendered

WORKLOADS = ("sitemaps", "places", "pages")
REVISIONS = {"sitemaps": "0003", "places": "0004", "pages": "0005"}
# The environment variables of each workload's settings (.env.example, render.yaml, docs).
SETTINGS_PREFIXES = {"sitemaps": "SITEMAP_MAX", "places": "GOOGLE_PLACES_", "pages": "PAGES_MAX"}
ENGINES = ("redis", "rabbitmq", "none")
CI_PROVIDERS = ("github", "gitlab", "none")
DEPLOY_TARGETS = ("render", "none")
PYTHONS = ("3.11", "3.12", "3.13")
LONG_SLUG = "zeta_sitemap_intelligence_service_for_xy"  # 40 characters
SUPABASE = {"database_provider": "supabase", "supabase_project_ref": "abcdefghijklmnopqrst"}


def combination_id(flags: tuple[bool, ...], engine: str, ci: str, deploy: str) -> str:
    """A readable id: the kept workloads, then the engine, CI provider and deploy target."""
    kept = "+".join(name for name, flag in zip(WORKLOADS, flags, strict=True) if flag)
    return f"{kept or 'no-workloads'}-{engine}-{ci}-{deploy}"


def combinations() -> dict[str, dict[str, Any]]:
    """Every supported combination of the file-shaping answers, keyed by `combination_id`."""
    combos: dict[str, dict[str, Any]] = {}
    shapes = itertools.product(
        itertools.product((True, False), repeat=3), ENGINES, CI_PROVIDERS, DEPLOY_TARGETS
    )
    for index, (flags, engine, ci, deploy) in enumerate(shapes):
        combos[combination_id(flags, engine, ci, deploy)] = {
            **{f"include_{name}": flag for name, flag in zip(WORKLOADS, flags, strict=True)},
            "task_engine": engine,
            "ci_provider": ci,
            "deploy_target": deploy,
            "python_version": PYTHONS[index % len(PYTHONS)],
            **(SUPABASE if index % 2 else {}),
            # Every fourth project has the longest slug the hook allows: lines must still fit.
            **({"project_slug": LONG_SLUG} if index % 4 == 3 else {}),
        }
    return combos


def pre_commit_selection() -> dict[str, dict[str, Any]]:
    """One bake per combination of the answers that change Python code: workloads x engine.

    The CI provider and deploy target (YAML files, and `tests/test_render.py`) rotate.
    """
    shapes = itertools.product(itertools.product((True, False), repeat=3), ENGINES)
    keys = [
        combination_id(flags, engine, CI_PROVIDERS[index % 3], DEPLOY_TARGETS[index % 2])
        for index, (flags, engine) in enumerate(shapes)
    ]
    return {key: COMBINATIONS[key] for key in keys}


COMBINATIONS = combinations()
PRE_COMMIT = pre_commit_selection()
"""These run `pre-commit run --all-files`, so mypy --strict too: every Python-shaping answer set."""


def expected_paths(slug: str, answers: dict[str, Any]) -> dict[str, bool]:
    """Path -> whether it must exist, for every path an answer adds or removes."""
    src, versions = f"src/{slug}", f"src/{slug}/migrations/versions"
    paths: dict[str, bool] = {}
    for name in WORKLOADS:
        included = bool(answers[f"include_{name}"])
        for path in (
            f"{src}/{name}",
            f"tests/{name}",
            f"tests/fixtures/{name}",
            f"{versions}/20261123_{REVISIONS[name]}_create_{name}.py",
        ):
            paths[path] = included
    paths[f"{src}/sitemaps/debug.py"] = bool(answers["include_sitemaps"])
    statement_fk = f"{versions}/20261130_0009_sitemap_urls_statement_fk.py"
    paths[statement_fk] = bool(answers["include_sitemaps"])
    paths[f"{src}/outbound/robots.py"] = bool(answers["include_pages"])
    paths["tests/outbound/test_robots.py"] = bool(answers["include_pages"])
    paths["tests/test_worker.py"] = answers["task_engine"] != "none"
    paths[".github/workflows/ci.yml"] = answers["ci_provider"] == "github"
    paths[".github/dependabot.yml"] = answers["ci_provider"] == "github"
    paths[".gitlab-ci.yml"] = answers["ci_provider"] == "gitlab"
    paths["renovate.json"] = answers["ci_provider"] == "gitlab"
    paths["render.yaml"] = answers["deploy_target"] == "render"
    paths["tests/test_render.py"] = answers["deploy_target"] == "render"
    # Always there: the reference feature, its job, the outbound client, the record of answers.
    for path in (f"{src}/profiles/tasks.py", f"{src}/outbound/client.py", ".cookiecutter.json"):
        paths[path] = True
    return paths


UNCHECKED = {"sessionlint", "fixtures", "docs"}
"""Where removed features may still be named: lint fixtures, test data, docs (checked apart)."""


def mentions_of_removed_features(project: Path, answers: dict[str, Any]) -> list[str]:
    """Lines that still import, route to or configure something the answers removed."""
    slug = project.name
    needles = [
        needle
        for name in WORKLOADS
        if not answers[f"include_{name}"]
        for needle in (
            re.escape(f"{slug}.{name}"),
            re.escape(f"/api/v1/{name}"),
            rf"(?<![\w/]){name}/",  # a package path, not a URL path in test data
            SETTINGS_PREFIXES[name],
        )
    ]
    if answers["task_engine"] != "redis":
        needles += ["taskiq_redis", "taskiq-redis", "REDIS_URL"]
    if answers["task_engine"] != "rabbitmq":
        needles += ["taskiq_aio_pika", "taskiq-aio-pika", "RABBITMQ_URL"]
    if answers["task_engine"] == "none":
        needles += ["TASK_BROKER"]
    if answers["deploy_target"] == "none":
        needles += [re.escape("render.yaml")]
    pattern = re.compile("|".join(needles)) if needles else None
    return [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in text_files(project)
        if pattern and not UNCHECKED & set(path.relative_to(project).parts)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]


# `uses: owner/action@<full commit SHA> # vX.Y.Z`: immutable, and the comment names the release.
PINNED_ACTION = re.compile(r"^\s*(?:-\s+)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def uv_syncs(command: str) -> list[list[str]]:
    """Every `uv sync` of a shell line (commands joined by `&&`), as argument lists."""
    parts = [shlex.split(part) for part in command.split("&&")]
    return [args for args in parts if args[:2] == ["uv", "sync"]]


def install_problems(project: Path, answers: dict[str, Any]) -> list[str]:
    """What keeps the project's installs from being `--locked` from uv.lock, file by file."""
    problems: list[str] = []
    makefile = (project / "Makefile").read_text()
    sync = re.search(r"^UV_SYNC := (.*)$", makefile, re.MULTILINE)
    if not sync or "sync --locked" not in sync.group(1):
        problems.append("Makefile: UV_SYNC is not `uv sync --locked`")
    install = makefile.split("$(INSTALLED):", 1)[1].split("\n\n", 1)[0]
    if "$(UV_SYNC)" not in install or "pip install" in install:
        problems.append("Makefile: make install does not run $(UV_SYNC) alone")
    dockerfile = (project / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line[4:] for line in dockerfile.splitlines() if line.startswith("RUN ")]
    docker_syncs = [args for run in runs for args in uv_syncs(run)]
    if len(docker_syncs) != 2 or any(
        not {"--locked", "--no-dev"} <= set(args) for args in docker_syncs
    ):
        problems.append(f"Dockerfile: uv syncs {docker_syncs}")
    if any("pip install ." in run for run in runs):
        problems.append("Dockerfile: pip install .")
    if answers["deploy_target"] == "render":
        for service in yaml.safe_load((project / "render.yaml").read_text())["services"]:
            if "buildCommand" in service:
                syncs = uv_syncs(service["buildCommand"])
                if not syncs or any(not {"--locked", "--no-dev"} <= set(a) for a in syncs):
                    problems.append(f"render.yaml {service['name']}: {service['buildCommand']}")
    if answers["ci_provider"] == "github":
        problems += github_problems(project)
    if answers["ci_provider"] == "gitlab":
        problems += gitlab_problems(project)
    return problems


def github_problems(project: Path) -> list[str]:
    """Unpinned actions, an install that could create the lock, a missing SARIF upload."""
    text = (project / ".github/workflows/ci.yml").read_text()
    problems = [
        f"ci.yml: not pinned by commit with its release: {line.strip()}"
        for line in text.splitlines()
        if re.match(r"^\s*(?:-\s+)?uses:", line) and not PINNED_ACTION.match(line)
    ]
    workflow = yaml.safe_load(text)
    (job,) = workflow["jobs"].values()
    if {**workflow["permissions"], **job.get("permissions", {})}.get("security-events") != "write":
        problems.append("ci.yml: no security-events: write for the SARIF upload")
    steps = job["steps"]
    install = next((step for step in steps if "make install" in step.get("run", "")), {})
    if "test -f uv.lock" not in install.get("run", ""):
        problems.append("ci.yml: make install runs without requiring the committed uv.lock")
    runs = [step.get("run", "") for step in steps]
    sarif = "sessionlint check --format sarif --output sessionlint.sarif"
    if not any(sarif in run for run in runs):
        problems.append("ci.yml: no sessionlint SARIF step")
    if "make check" not in runs:  # the gate stays: findings fail the job there
        problems.append("ci.yml: make check does not run")
    upload = "github/codeql-action/upload-sarif@"
    uploads = [step for step in steps if step.get("uses", "").startswith(upload)]
    if [u.get("with", {}).get("sarif_file") for u in uploads] != ["sessionlint.sarif"]:
        problems.append("ci.yml: sessionlint.sarif is not uploaded to code scanning")
    elif "always()" not in uploads[0].get("if", ""):
        problems.append("ci.yml: the SARIF upload is skipped when an earlier step fails")
    dependabot = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in dependabot["updates"]}
    if not {"uv", "github-actions"} <= ecosystems:
        problems.append(f"dependabot.yml: ecosystems {sorted(ecosystems)}")
    return problems


def gitlab_problems(project: Path) -> list[str]:
    """An install that could create the lock, a missing Code Quality report, no Renovate."""
    (job,) = [
        value
        for value in yaml.safe_load((project / ".gitlab-ci.yml").read_text()).values()
        if isinstance(value, dict) and "script" in value
    ]
    problems: list[str] = []
    setup = job["before_script"]
    install = [i for i, line in enumerate(setup) if line.startswith("make install")]
    if not install or not any("test -f uv.lock" in line for line in setup[: install[0]]):
        problems.append(".gitlab-ci.yml: make install runs without the committed uv.lock")
    report = "gl-code-quality-report.json"
    if not any(f"--format gitlab --output {report}" in line for line in job["after_script"]):
        problems.append(".gitlab-ci.yml: no sessionlint Code Quality report")
    if job["artifacts"]["reports"].get("codequality") != report:
        problems.append(".gitlab-ci.yml: the Code Quality report is not an artifact")
    if "make check" not in job["script"]:
        problems.append(".gitlab-ci.yml: make check does not run")
    renovate = json.loads((project / "renovate.json").read_text())
    if not {"pep621", "gitlabci"} <= set(renovate["enabledManagers"]):
        problems.append(f"renovate.json: managers {renovate['enabledManagers']}")
    if not renovate["lockFileMaintenance"]["enabled"]:
        problems.append("renovate.json: uv.lock maintenance is off")
    return problems


@pytest.mark.parametrize("answers", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_combination_bakes_clean(
    tmp_path: Path, tools_python: Path, answers: dict[str, Any]
) -> None:
    project = bake_into(tmp_path, **answers)
    slug = project.name

    assert unrendered(project) == []
    wrong = {
        path: must_exist
        for path, must_exist in expected_paths(slug, answers).items()
        if (project / path).exists() != must_exist
    }
    assert wrong == {}, "path -> whether it should exist"
    assert mentions_of_removed_features(project, answers) == []

    recorded = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]
    assert {key: recorded[key] for key in answers} == answers
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    for name in ("render.yaml", ".gitlab-ci.yml", ".github/workflows/ci.yml"):
        if (project / name).exists():
            assert isinstance(yaml.safe_load((project / name).read_text()), dict), name
    assert install_problems(project, answers) == []

    bin_dir = tools_python.parent
    env = {"PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    run([str(bin_dir / "ruff"), "check", "--no-cache", "."], cwd=project)
    run([str(bin_dir / "ruff"), "format", "--no-cache", "--check", "."], cwd=project)
    run([str(bin_dir / "lint-imports"), "--no-logo", "--no-cache"], cwd=project, env=env)
    run([str(tools_python), "-m", "sessionlint", "check", "."], cwd=project, env=env)


@pytest.mark.parametrize("answers", PRE_COMMIT.values(), ids=PRE_COMMIT.keys())
def test_every_python_shaping_combination_passes_pre_commit_with_zero_changes(
    tmp_path: Path, tools_python: Path, answers: dict[str, Any]
) -> None:
    project = commit_as_installed(bake_into(tmp_path, **answers), tools_python)
    env = {"PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    run([".venv/bin/pre-commit", "run", "--all-files"], cwd=project, env=env, timeout=900)
    assert git(project, "status", "--porcelain").stdout == ""


def test_the_matrix_covers_every_value() -> None:
    assert len(COMBINATIONS) == 2**3 * len(ENGINES) * len(CI_PROVIDERS) * len(DEPLOY_TARGETS)
    assert len(PRE_COMMIT) == 2**3 * len(ENGINES)
    for answer, values in {
        "task_engine": ENGINES,
        "ci_provider": CI_PROVIDERS,
        "deploy_target": DEPLOY_TARGETS,
        "python_version": PYTHONS,
        "database_provider": ("postgres", "supabase"),
    }.items():
        seen = {answers.get(answer, "postgres") for answers in COMBINATIONS.values()}
        assert seen == set(values), answer
        seen = {answers.get(answer, "postgres") for answers in PRE_COMMIT.values()}
        assert len(seen) > 1, f"pre-commit bakes never vary {answer}"
