"""The distributed task engine: a real Redis and a real `taskiq worker` process run the jobs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import unavailable
from tests.serving import PACKAGE, service_environment

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_answers(url: str) -> bool:
    """Whether something listens where Redis should be."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The Redis the tests use; skipped where none runs, except in CI."""
    if not redis_answers(REDIS):
        unavailable(f"Redis does not answer at {REDIS} (set TEST_REDIS_URL)")
    return REDIS


@pytest.fixture
def redis_settings(settings: Settings, redis_url: str) -> Settings:
    """The run's settings with the Redis broker and a queue of this test's own."""
    return settings.model_copy(
        update={
            "task_broker": "redis",
            "redis_url": SecretStr(redis_url),
            "task_queue_name": f"jobs-test-{uuid.uuid4().hex[:8]}",
            "tasks_inline": False,
        }
    )


@pytest.fixture
def worker(redis_settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A `taskiq worker` process with the same settings, as on another host."""
    env = service_environment(
        redis_settings.get_db_url(),
        LOG_LEVEL="INFO",
        TASK_BROKER="redis",
        REDIS_URL=redis_settings.redis_url.get_secret_value(),
        TASK_QUEUE_NAME=redis_settings.task_queue_name,
        OUTBOUND_ALLOWLIST=redis_settings.outbound_allowlist,
    )
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskiq",
                "worker",
                f"{PACKAGE}.worker:broker",
                "--workers",
                "1",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    print(log.read_text())  # shown by pytest when the test failed


@pytest.fixture
async def live_client(redis_settings: Settings, committed: None) -> AsyncIterator[AsyncClient]:
    """A client on an app with its real lifespan (real commits, the Redis broker)."""
    app = create_app(redis_settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


async def wait_for(client: AsyncClient, job_id: str, seconds: float = 60) -> dict[str, object]:
    """Poll the jobs API until the job has finished."""
    async with asyncio.timeout(seconds):
        while True:
            job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
            if job["status"] in {"succeeded", "failed"}:
                return job  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


async def test_a_worker_process_runs_the_job(
    live_client: AsyncClient, worker: subprocess.Popen[str]
) -> None:
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    response = await live_client.post("/api/v1/profiles/imports", json=body)
    assert response.status_code == 202
    job = await wait_for(live_client, response.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert worker.poll() is None, "the worker is still serving"
    profiles = (await live_client.get("/api/v1/profiles")).json()
    assert [item["email"] for item in profiles["items"]] == ["ada@example.com"]


async def test_a_failing_job_is_marked_failed_by_the_worker(
    live_client: AsyncClient, worker: subprocess.Popen[str], engine: AsyncEngine
) -> None:
    taken = await live_client.post("/api/v1/profiles", json={"name": "a", "email": "a@example.com"})
    assert taken.status_code == 201
    body = {"profiles": [{"name": name, "email": f"{name}@example.com"} for name in "ba"]}
    response = await live_client.post("/api/v1/profiles/imports", json=body)
    job = await wait_for(live_client, response.json()["job_id"])
    assert job["status"] == "failed"
    assert "already exists" in str(job["error"])
    profiles = (await live_client.get("/api/v1/profiles")).json()
    assert profiles["total"] == 1, "the failed import left no profile behind"
    async with engine.connect() as connection:
        stuck = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        )
    assert stuck == 0, "the failed job left a transaction open"
