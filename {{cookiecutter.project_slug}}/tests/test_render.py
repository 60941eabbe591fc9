"""render.yaml says what the code does: the `start` command on Render's port, migrations before
each deploy on their own URL, and no secret committed."""

from __future__ import annotations

import shlex
from typing import Any

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.serving import PACKAGE
{%- if cookiecutter.task_engine == "redis" %}
from tests.test_deploy import START, WORKER, assert_locked_install_without_dev_tools, load_yaml
{%- else %}
from tests.test_deploy import START, assert_locked_install_without_dev_tools, load_yaml
{%- endif %}

SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "DATABASE_URL")


def render_services() -> dict[str, dict[str, Any]]:
    """The services of render.yaml by type."""
    services = {service["type"]: service for service in load_yaml("render.yaml")["services"]}
    expected = {{ '["web", "worker", "keyvalue"]' if cookiecutter.task_engine == "redis" else '["web"]' }}
    assert list(services) == expected
    return services


def render_service() -> dict[str, Any]:
    """The web service of render.yaml."""
    return render_services()["web"]


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
    assert_locked_install_without_dev_tools(service["buildCommand"])


def test_render_commits_no_secret() -> None:
    env = {item["key"]: item for item in render_service()["envVars"]}
    for key in ("DATABASE_URL", "MIGRATIONS_DATABASE_URL"):
        assert env[key] == {"key": key, "sync": False}
    committed = [key for key, item in env.items() if "value" in item]
    assert [key for key in committed if any(word in key for word in SECRET_WORDS)] == []
    for key, item in env.items():  # every committed value is a valid setting
        if "value" in item and key not in {"PYTHON_VERSION", "PORT"}:
            assert key.lower() in Settings.model_fields, key
{%- if cookiecutter.task_engine == "redis" %}


def test_render_runs_jobs_in_a_worker_through_its_key_value() -> None:
    services = render_services()
    web, worker, key_value = services["web"], services["worker"], services["keyvalue"]
    # The command tests/test_worker.py starts, with the same build as the web service.
    assert shlex.split(worker["startCommand"])[:5] == WORKER
    assert worker["buildCommand"] == web["buildCommand"]
    link = {"type": "keyvalue", "name": key_value["name"], "property": "connectionString"}
    for service in (web, worker):
        env = {item["key"]: item for item in service["envVars"]}
        assert env["TASK_BROKER"]["value"] == "redis"
        assert env["REDIS_URL"]["fromService"] == link
        assert env["DATABASE_URL"] == {"key": "DATABASE_URL", "sync": False}
    # Private, and queued jobs are never evicted to make room.
    assert (key_value["ipAllowList"], key_value["maxmemoryPolicy"]) == ([], "noeviction")
{%- endif %}
