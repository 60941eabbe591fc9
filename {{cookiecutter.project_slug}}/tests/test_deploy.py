"""Deployment files say what the code does: render.yaml, the Dockerfile and docker-compose.yml
run the same `start` sub-command the tests run, with migrations kept off the pooler.
"""

from __future__ import annotations

import json
import shlex
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
    running_service,
    service_environment,
)

START = ["python", *START_ARGS]
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "DATABASE_URL")


def load_yaml(name: str) -> dict[str, Any]:
    """Parse a YAML file of the project."""
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def render_service() -> dict[str, Any]:
    """The web service of render.yaml."""
    services = load_yaml("render.yaml")["services"]
    assert [service["type"] for service in services] == ["web"]
    service: dict[str, Any] = services[0]
    return service


def dockerfile_instructions(keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction of the Dockerfile (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        line.split(None, 1)[1]
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [keyword] and len(line.split(None, 1)) == 2
    ]


def test_render_starts_the_start_command_on_the_render_port() -> None:
    service = render_service()
    assert shlex.split(service["startCommand"]) == [
        *START,
        "--host",
        "0.0.0.0",
        "--port",
        "$PORT",
    ]
    assert service["healthCheckPath"] == "/health/db"
    assert shlex.split(service["preDeployCommand"]) == ["python", "-m", PACKAGE, "migrate"]
    assert "pip install ." in service["buildCommand"]


def test_render_commits_no_secret() -> None:
    env = {item["key"]: item for item in render_service()["envVars"]}
    for key in ("DATABASE_URL", "MIGRATIONS_DATABASE_URL"):
        assert env[key] == {"key": key, "sync": False}
    committed = [key for key, item in env.items() if "value" in item]
    assert [key for key in committed if any(word in key for word in SECRET_WORDS)] == []
    for key, item in env.items():  # every committed value is a valid setting
        if "value" in item and key not in {"PYTHON_VERSION", "PORT"}:
            assert key.lower() in Settings.model_fields, key


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
