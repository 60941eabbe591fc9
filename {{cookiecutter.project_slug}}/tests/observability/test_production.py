"""The production command end to end: JSON logs with IDs, `/metrics` over two uvicorn workers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import TEST_API_KEY
from tests.observability.test_metrics import scraped, value
from tests.serving import running_service

TOKEN = "scrape-token-abcdef012345"
REQUESTS = 6


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the service's output, each a JSON object: the supervising process's lines
    (uvicorn's and the command line's) as well as those of the workers that serve requests."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_logs_and_metrics_of_a_production_process(
    settings: Settings, committed: None, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    environment = {
        "ENVIRONMENT": "production",
        "API_KEYS": TEST_API_KEY,
        "LOG_LEVEL": "INFO",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "METRICS_TOKEN": TOKEN,
    }
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    with running_service(tmp_path, settings.get_db_url(), environment) as service:
        with httpx.Client(base_url=service.base_url, timeout=10) as client:
            for number in range(REQUESTS):
                listed = client.get("/api/v1/profiles", headers={"X-Request-ID": f"list-{number}"})
                assert listed.headers["X-Request-ID"] == f"list-{number}"
            submitted = client.post(
                "/api/v1/profiles/imports",
                json=body,
                headers={"X-API-Key": TEST_API_KEY, "X-Request-ID": "import-1"},
            )
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["job_id"]
            deadline = time.monotonic() + 20
            while client.get(f"/api/v1/jobs/{job_id}").json()["status"] != "succeeded":
                assert time.monotonic() < deadline, service.output()[-3000:]
                time.sleep(0.1)
            assert client.get("/metrics").status_code == 401
            scrape = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        output = service.output()
    assert scrape.status_code == 200
    samples = scraped(scrape.text)
    count = "http_server_request_duration_seconds_count"
    assert value(samples, count, http_route="/api/v1/profiles") == REQUESTS  # both workers
    assert value(samples, "jobs_finished_total", job_kind="profiles.import") == 1
    assert value(samples, "db_client_connection_count", db_client_connection_state="idle") >= 1
    lines = json_lines(output)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {line.get("request_id") for line in access} >= {f"list-{n}" for n in range(REQUESTS)}
    job_lines = [line for line in lines if line.get("job_id") == job_id]
    assert job_lines
    assert all(line["job_kind"] == "profiles.import" for line in job_lines)
    assert all(line["request_id"] == "import-1" for line in job_lines)
    assert TEST_API_KEY not in output
