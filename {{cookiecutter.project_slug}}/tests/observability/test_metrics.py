"""`/metrics`: HTTP, pool and job figures; protected or off by setting; several processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.observability import metrics
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
from {{ cookiecutter.project_slug }}.outbound.client import fetch
from {{ cookiecutter.project_slug }}.outbound.errors import ConnectionFailedError
{%- endif %}
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import settings_for
from tests.observability.conftest import running
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
from tests.outbound.conftest import closed_port
{%- endif %}

PROFILE_ROUTE = "/api/v1/profiles/{profile_id}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scraped(text: str) -> Samples:
    """The samples of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels` (0 when none): earlier tests
    in the same process may have left samples with other values of the labels not given."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def sample(name: str, **labels: str) -> float:
    """The current value of a sample of this process's registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def with_settings(settings: Settings, **overrides: Any) -> Settings:
    """The test settings with `overrides`."""
    return settings_for(settings.get_db_url(), **overrides)


async def test_metrics_show_http_pool_and_job_figures(settings: Settings, committed: None) -> None:
    app = create_app(settings)
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    async with running(app) as client:
        assert (await client.get(f"/api/v1/profiles/{uuid.uuid4()}")).status_code == 404
        assert (await client.get("/api/v1/profiles")).status_code == 200
        submitted = await client.post("/api/v1/profiles/imports", json=body)
        assert submitted.status_code == 202, submitted.text
        assert (await client.get("/nowhere")).status_code == 404
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = scraped(response.text)
    duration = "http_server_request_duration_seconds_count"
    not_found = {"http_request_method": "GET", "http_response_status_code": "404"}
    assert value(samples, duration, http_route=PROFILE_ROUTE, **not_found) >= 1
    assert value(samples, duration, http_route="/api/v1/profiles", http_request_method="GET") >= 1
    assert value(samples, duration, http_route="", **not_found) >= 1
    assert not any("/nowhere" in str(labels) for _, labels in samples)  # no raw paths
    url = settings.get_db_url()
    pool = f"{url.host}:{url.port}/{url.database}"
    by_pool = {"db_client_connection_pool_name": pool}
    connections = "db_client_connection_count"
    assert value(samples, connections, db_client_connection_state="idle", **by_pool) >= 1
    assert value(samples, connections, db_client_connection_state="used", **by_pool) == 0
    assert value(samples, "db_client_connection_max", **by_pool) == (
        settings.db_pool_size + settings.db_max_overflow
    )
    assert value(samples, "db_client_connection_pending_requests", **by_pool) == 0
    kind = {"job_kind": "profiles.import", "job_status": "succeeded"}
    assert value(samples, "jobs_finished_total", **kind) >= 1
    assert value(samples, "job_duration_seconds_count", **kind) >= 1
    assert value(samples, "job_attempts_sum", **kind) >= 1


async def test_a_failed_job_is_counted_as_failed(client: Any) -> None:
    failed = {"job_kind": "profiles.import", "job_status": "failed"}
    before = sample("jobs_finished_total", **failed)
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    assert (await client.post("/api/v1/profiles", json=body["profiles"][0])).status_code == 201
    response = await client.post("/api/v1/profiles/imports", json=body)  # the email is taken
    assert response.status_code == 202
    job = await client.get(f"/api/v1/jobs/{response.json()['job_id']}")
    assert job.json()["status"] == "failed"
    assert sample("jobs_finished_total", **failed) == before + 1


async def test_pending_requests_and_timeouts(settings: Settings) -> None:
    small = with_settings(settings, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.3)
    async with database_lifespan(small) as engine:
        metrics.observe_pool(engine)
        url = engine.url
        pool = {"db_client_connection_pool_name": f"{url.host}:{url.port}/{url.database}"}
        timeouts = sample("db_client_connection_timeouts_total", **pool)
        async with engine.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            used = sample("db_client_connection_count", db_client_connection_state="used", **pool)
            assert used == 1
            waiting = asyncio.create_task(engine.connect().start())
            await asyncio.sleep(0.1)
            assert sample("db_client_connection_pending_requests", **pool) == 1
            with pytest.raises(PoolTimeoutError):
                await waiting
        assert sample("db_client_connection_pending_requests", **pool) == 0
        assert sample("db_client_connection_timeouts_total", **pool) == timeouts + 1
        assert sample("db_client_connection_count", db_client_connection_state="idle", **pool) == 1
        assert sample("db_client_connection_count", db_client_connection_state="used", **pool) == 0


async def test_metrics_can_be_switched_off(settings: Settings) -> None:
    name = "http_server_request_duration_seconds_count"
    served = {
        "http_route": "/health",
        "http_request_method": "GET",
        "http_response_status_code": "200",
    }
    before = sample(name, **served)
    app = create_app(with_settings(settings, metrics="off"))
    async with running(app) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/health")).status_code == 200
    assert sample(name, **served) == before  # not measured


async def test_unknown_methods_share_one_label(client: Any) -> None:
    labels = {"http_request_method": "_OTHER", "http_route": "/health"}
    name = "http_server_request_duration_seconds_count"
    before = sample(name, **labels, http_response_status_code="405")
    assert (await client.request("PURGE", "/health")).status_code == 405
    assert sample(name, **labels, http_response_status_code="405") == before + 1


async def test_production_serves_no_metrics_by_default(settings: Settings) -> None:
    production = with_settings(settings, environment="production")
    assert production.metrics_mode == "off"
    async with running(create_app(production)) as client:
        assert (await client.get("/metrics")).status_code == 404


@pytest.mark.parametrize("environment", ["production", "development"])
async def test_a_token_protects_the_metrics(settings: Settings, environment: str) -> None:
    token = "scrape-token-0123456789"
    protected = with_settings(settings, environment=environment, metrics_token=SecretStr(token))
    assert protected.metrics_mode == "token"
    async with running(create_app(protected)) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {token}x"})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "http_server_request_duration_seconds" not in missing.text
    assert right.status_code == 200
    assert "http_server_request_duration_seconds" in right.text


def test_metrics_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="METRICS=token needs METRICS_TOKEN"):
        Settings(_env_file=None, metrics="token")
    with pytest.raises(ValidationError, match="METRICS_TOKEN needs at least"):
        Settings(_env_file=None, metrics_token=SecretStr("short"))


SCRIPT = """
import asyncio
import json
import os
import sys

from pydantic import SecretStr

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.observability import metrics
from {{ cookiecutter.project_slug }}.settings import Settings

metrics.observe_request("GET", "/api/v1/profiles", 200, 0.01)
child = os.fork()  # a second worker process, as uvicorn or gunicorn start them
if child == 0:
    metrics.observe_request("GET", "/api/v1/profiles", 200, 0.01)
    os._exit(0)
os.waitpid(child, 0)


async def pool():
    url = SecretStr(sys.argv[1])
    settings = Settings(_env_file=None, database_url=url, db_ssl_mode="disable")
    async with database_lifespan(settings) as engine:
        metrics.observe_pool(engine)
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
            held = metrics.exposition().decode()
        return [held, metrics.exposition().decode()]


print(json.dumps(asyncio.run(pool())))
"""


def test_several_processes_add_up(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, metrics.MULTIPROCESS_DIR_VARIABLE: str(tmp_path)}
    url = settings.get_db_url().render_as_string(hide_password=False)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert len(list(tmp_path.glob("histogram_*.db"))) == 2  # one file per process
    held, returned = (scraped(text) for text in json.loads(result.stdout))
    count = "http_server_request_duration_seconds_count"
    assert value(returned, count, http_route="/api/v1/profiles") == 2
    state = "db_client_connection_state"
    assert value(held, "db_client_connection_count", **{state: "used"}) == 1
    assert value(returned, "db_client_connection_count", **{state: "used"}) == 0
    assert value(returned, "db_client_connection_count", **{state: "idle"}) == 1
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}


async def test_outbound_requests_by_status_and_error(resources: Any, site: Any) -> None:
    name = "http_client_request_duration_seconds_count"
    ok = {"http_request_method": "GET", "http_response_status_code": "200", "error_type": ""}
    refused = {
        "http_request_method": "GET",
        "http_response_status_code": "",
        "error_type": "ConnectError",
    }
    before_ok, before_refused = sample(name, **ok), sample(name, **refused)
    result = await fetch(
        resources.http, site.url("/files/outbound/page.html"), config=resources.outbound
    )
    assert result.status_code == 200
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(ConnectionFailedError):
        await fetch(resources.http, url, config=resources.outbound)
    assert sample(name, **ok) == before_ok + 1
    assert sample(name, **refused) == before_refused + 1
{%- else %}


def test_no_outbound_metrics_without_a_workload_that_fetches() -> None:
    assert not hasattr(metrics, "HTTP_CLIENT_DURATION")
{%- endif %}
