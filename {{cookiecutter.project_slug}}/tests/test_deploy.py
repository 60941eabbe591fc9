"""Deployment files say what the code does: the Dockerfile and docker-compose.yml
run the same `start` sub-command the tests run, with migrations kept off the pooler.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import yaml

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.serving import (
    PACKAGE,
    ROOT,
    START_ARGS,
{%- if cookiecutter.task_engine != "none" %}
    WORKER_ARGS,
{%- endif %}
    running_service,
    service_environment,
)

START = ["python", *START_ARGS]
{%- if cookiecutter.task_engine != "none" %}
WORKER = ["python", *WORKER_ARGS]
{%- endif %}


def load_yaml(name: str) -> dict[str, Any]:
    """Parse a YAML file of the project."""
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def dockerfile_instructions(keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction of the Dockerfile (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        line.split(None, 1)[1]
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [keyword] and len(line.split(None, 1)) == 2
    ]


def uv_syncs(command: str) -> list[list[str]]:
    """The `uv sync` commands of a shell line (commands joined by `&&`), as argument lists."""
    commands = [shlex.split(part) for part in command.split("&&")]
    return [args for args in commands if args[:2] == ["uv", "sync"]]


def assert_locked_install_without_dev_tools(command: str) -> None:
    """`command` installs uv from PyPI with pip, then exactly uv.lock without the dev group."""
    assert "pip install 'uv>=" in command, command
    syncs = uv_syncs(command)
    assert syncs, f"no uv sync in {command!r}"
    for args in syncs:
        assert {"--locked", "--no-dev"} <= set(args), args
    assert "pip install ." not in command
    assert "pip install -e" not in command


def test_dockerfile_installs_uv_lock_without_dev_tools() -> None:
    runs = dockerfile_instructions("RUN")
    syncs = [run for run in runs if uv_syncs(run)]
    assert len(syncs) == 2, runs  # the dependencies' layer, then the project
    assert_locked_install_without_dev_tools(" && ".join(runs))
    assert "--no-editable" in uv_syncs(syncs[-1])[0]  # a wheel: the runtime stage has no source
    # The lock is copied in before the first sync, and neither ignore file leaves it out.
    text = (ROOT / "Dockerfile").read_text()
    copies = [copy for copy in dockerfile_instructions("COPY") if "uv.lock" in copy.split()]
    assert copies
    assert text.index(copies[0]) < text.index(syncs[0])
    for ignore_file in (".dockerignore", ".gitignore"):
        lines = (ROOT / ignore_file).read_text().splitlines()
        patterns = [line.strip().strip("/") for line in lines if not line.startswith("#")]
        assert not [p for p in patterns if p and fnmatch.fnmatch("uv.lock", p)], ignore_file


def test_dev_tools_are_only_in_the_dev_group() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = " ".join(pyproject["project"]["dependencies"])
    dev = " ".join(pyproject["dependency-groups"]["dev"])
    for tool in ("pytest", "ruff", "mypy", "pgserver", "mkdocs-material"):
        assert tool in dev, tool
        assert tool not in runtime, tool


def test_dockerfile_is_multi_stage_non_root_and_runs_start() -> None:
    assert len(dockerfile_instructions("FROM")) >= 2
    users = dockerfile_instructions("USER")
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    command = json.loads(dockerfile_instructions("CMD")[-1])
    assert command == [*START, "--host", "0.0.0.0"]
    assert dockerfile_instructions("HEALTHCHECK")


def test_compose_puts_the_app_behind_pgbouncer_and_migrations_on_the_server() -> None:
    services = load_yaml("docker-compose.yml")["services"]
    assert {"db", "pgbouncer", "migrate", "app"} <= services.keys()
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    app = services["app"]
    assert app["command"][:4] == START
    assert "@pgbouncer:" in app["environment"]["DATABASE_URL"]
    assert "@db:" in app["environment"]["MIGRATIONS_DATABASE_URL"]
    assert services["migrate"]["command"] == ["python", "-m", PACKAGE, "migrate"]
    assert "@db:" in services["migrate"]["environment"]["DATABASE_URL"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
{%- if cookiecutter.task_engine != "none" %}


def test_compose_runs_jobs_in_a_worker_with_the_tested_command() -> None:
    services = load_yaml("docker-compose.yml")["services"]
    app, worker = services["app"], services["worker"]
    assert worker["command"][:5] == WORKER  # the command tests/test_worker.py starts
    engine = "{{ cookiecutter.task_engine }}"
    for key in ("DATABASE_URL", "TASK_BROKER", f"{engine.upper()}_URL"):
        assert worker["environment"][key] == app["environment"][key], key
    assert app["environment"]["TASK_BROKER"] == engine
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"][engine]["condition"] == "service_healthy"
    assert engine in services
{%- endif %}


def test_start_serves_health_db(settings: Settings, tmp_path: Path) -> None:
    with running_service(tmp_path, settings.get_db_url()) as service:
        response = httpx.get(f"{service.base_url}/health/db", timeout=10)
    assert response.status_code == 200, service.output()[-2000:]
    assert response.json() == {"status": "ok"}


def test_start_refuses_to_run_without_a_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *START_ARGS, "--port", "1"],
        cwd=tmp_path,
        env=service_environment(None, LOG_LEVEL="INFO"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
