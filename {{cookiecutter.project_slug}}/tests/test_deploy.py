"""Deployment files say what the code does: the Dockerfile and docker-compose.yml
run the same `start` sub-command the tests run, with migrations kept off the pooler.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
